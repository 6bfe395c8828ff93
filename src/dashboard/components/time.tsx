import { useEffect, useState } from 'react';

/** The current time, re-read every `everyMs`: what makes "held 3 min ago" and countdowns move. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** "3 min 10 s", "2 h 5 min", "4 days 3 h": the two largest units, for ages and countdowns. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const units: [number, string, string][] = [
    [86_400, 'day', 'days'],
    [3600, 'h', 'h'],
    [60, 'min', 'min'],
    [1, 's', 's'],
  ];
  const parts: string[] = [];
  let rest = s;
  for (const [size, one, many] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || (parts.length === 0 && size === 1)) parts.push(`${n} ${n === 1 ? one : many}`);
    rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** A moment as "5 min ago", with the full date and time on hover and for screen readers. */
export function Ago({ at, now }: { at: string; now: number }) {
  const ms = now - Date.parse(at);
  const full = absolute.format(new Date(at));
  return (
    <time dateTime={at} title={full}>
      {ms < 5000 ? 'just now' : `${duration(ms)} ago`}
      <span className="visually-hidden"> ({full})</span>
    </time>
  );
}

export function formatTime(at: string): string {
  return absolute.format(new Date(at));
}
