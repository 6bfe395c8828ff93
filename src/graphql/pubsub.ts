import { setMaxListeners } from 'node:events';
import { createPubSub } from 'graphql-yoga';
import type { Notifier } from '../db/notify.js';
import type { SyncEvent } from '../core/events.js';

type EventOf<T extends SyncEvent['type']> = Extract<SyncEvent, { type: T }>;
type Topics = { [T in SyncEvent['type']]: [EventOf<T>] };

export interface EventBus {
  pubsub: ReturnType<typeof createPubSub<Topics>>;
  /** Publish after commit. With a notifier, every instance (this one too) receives it from Postgres. */
  publish(events: readonly SyncEvent[]): void;
  /** Resolves once everything published so far has been handed to Postgres. */
  flushed(): Promise<void>;
  /** Resolves once the bus listens (LISTEN issued). */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * In process by default (PGlite: one process owns the database). Given a Postgres notifier,
 * events travel through LISTEN/NOTIFY so a listener on instance A sees changes made on B.
 */
export function createEventBus(opts: { notifier?: Notifier; onError?: (e: unknown) => void } = {}): EventBus {
  // Thousands of subscriptions listen to one topic: lift Node's 10-listener leak warning.
  const eventTarget = new EventTarget();
  setMaxListeners(0, eventTarget);
  const pubsub = createPubSub<Topics>({ eventTarget });
  const local = (e: SyncEvent) => pubsub.publish(e.type, e as never);
  if (!opts.notifier) {
    return { pubsub, publish: (events) => events.forEach(local), flushed: async () => {}, ready: Promise.resolve(), close: async () => {} };
  }
  const notifier = opts.notifier;
  let last: Promise<unknown> = Promise.resolve();
  const unsubscribe = notifier.subscribe((payload) => {
    try {
      for (const e of JSON.parse(payload) as SyncEvent[]) local(e);
    } catch (e) {
      opts.onError?.(e);
    }
  });
  return {
    pubsub,
    // One message per commit's events, in order; every instance (this one too) gets it from Postgres.
    publish: (events) => {
      if (events.length === 0) return;
      const sent = notifier.publish(JSON.stringify(events)).catch((err) => opts.onError?.(err));
      last = last.then(() => sent);
    },
    flushed: () => last.then(() => undefined),
    ready: unsubscribe.then(() => undefined),
    close: async () => (await unsubscribe)(),
  };
}
