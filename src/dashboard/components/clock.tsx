import { memo, useSyncExternalStore } from 'react';
import { duration, formatTime } from './time.tsx';

/**
 * One clock for a whole page of relative times: a single interval, started by the first time on
 * screen and stopped with the last, and each time cell subscribed to it on its own. A tick
 * re-renders the few cells that show a time, never the rows around them (a backlog page of 50
 * rows is 100 small text updates a second, not 50 rows re-rendered).
 */
const listeners = new Set<() => void>();
let now = Date.now();
let timer: ReturnType<typeof setInterval> | null = null;

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const l of listeners) l();
    }, 1000);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}

const read = () => now;

/** The shared clock's time, to the second. */
export const useClock = () => useSyncExternalStore(subscribe, read, read);

/** "3 min ago" that moves, with the full time for hover and screen readers. */
export const LiveAgo = memo(function LiveAgo({ at }: { at: string }) {
  const ms = useClock() - Date.parse(at);
  const full = formatTime(at);
  return (
    <time dateTime={at} title={full}>
      {ms < 5000 ? 'just now' : `${duration(ms)} ago`}
      <span className="visually-hidden"> ({full})</span>
    </time>
  );
});

/** The time left until `until`, or `due` once it has passed. */
export const LiveCountdown = memo(function LiveCountdown({ until, due }: { until: string; due: string }) {
  const left = Date.parse(until) - useClock();
  return left > 0 ? <time dateTime={until}>{duration(left)}</time> : <span className="tag soft">{due}</span>;
});
