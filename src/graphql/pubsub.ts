import { setMaxListeners } from 'node:events';
import { GraphQLError } from 'graphql';
import { Repeater } from 'graphql-yoga';
import type { Notifier } from '../db/notify.js';
import type { SyncEvent } from '../core/events.js';

type EventOf<T extends SyncEvent['type']> = Extract<SyncEvent, { type: T }>;
export type Topic = SyncEvent['type'];

/**
 * How far one subscriber may fall behind (events published to it and not yet sent) before its
 * subscription ends with SUBSCRIBER_TOO_SLOW. A bound, so a client that reads slowly (or not at
 * all) cannot make the server hold every event for it; about 2 MB of ids at most.
 */
export const MAX_EVENTS_BEHIND = 10_000;

/**
 * The last value of a subscription that ends for a reason its client must hear (its token was
 * revoked, it fell too far behind): the field's resolver throws `error`, so the client gets a
 * result with that error, then the end of the stream, on graphql-ws and SSE alike.
 */
export class SubscriptionEnd {
  constructor(readonly error: GraphQLError) {}
}

export interface SubscribeOptions<E> {
  /**
   * Ends the subscription when aborted. With a SubscriptionEnd as the abort's reason, events still
   * queued are dropped and that is the last value; with any other reason the queue is sent first
   * and the stream completes (a shutdown).
   */
  signal?: AbortSignal;
  /** Only events it accepts are queued for this subscriber. */
  filter?: (event: E) => boolean;
  /** Called when the subscription starts (on its first next(): a Repeater starts lazily). */
  onStart?: () => void;
  /** Called once a started subscription has ended, whatever ended it (the signal, the client, too slow). */
  onEnd?: () => void;
}

export interface PubSub {
  publish<T extends Topic>(topic: T, event: EventOf<T>): void;
  /** The events of `topic` from now on, until the subscription ends (see SubscribeOptions). */
  subscribe<T extends Topic>(topic: T, opts?: SubscribeOptions<EventOf<T>>): Repeater<EventOf<T> | SubscriptionEnd>;
}

export interface EventBus {
  pubsub: PubSub;
  /** Publish after commit. With a notifier, every instance (this one too) receives it from Postgres. */
  publish(events: readonly SyncEvent[]): void;
  /** Resolves once everything published so far has been handed to Postgres. */
  flushed(): Promise<void>;
  /** Resolves once the bus listens (LISTEN issued). */
  ready: Promise<void>;
  /** False while its broker is out of reach (/ready then answers 503). */
  healthy(): boolean;
  close(): Promise<void>;
}

/**
 * What waits for one subscriber, as a Repeater buffer (the documented RepeaterBuffer shape:
 * empty, full, add, remove) that also tells its length and can be dropped. One slot beyond the
 * bound is kept for the SubscriptionEnd that says why the subscription ended.
 */
class Backlog {
  private items: unknown[] = [];
  get length(): number {
    return this.items.length;
  }
  get empty(): boolean {
    return this.items.length === 0;
  }
  get full(): boolean {
    return this.items.length > MAX_EVENTS_BEHIND;
  }
  add(value: unknown): void {
    this.items.push(value);
  }
  remove(): unknown {
    return this.items.shift();
  }
  clear(): void {
    this.items = [];
  }
}

const tooSlow = () =>
  new GraphQLError(`the subscriber fell ${MAX_EVENTS_BEHIND} events behind: subscribe again, and pull (changesSince) what was missed`, {
    extensions: { code: 'SUBSCRIBER_TOO_SLOW' },
  });

/**
 * Typed topics over an EventTarget. Each subscription is a Repeater that ends through its
 * AbortSignal (never by racing another iterator: a race asks every racer for a value once per
 * event, and one that never yields overflows after 1,024), and queues at most MAX_EVENTS_BEHIND
 * events for its subscriber: a Repeater without a buffer throws after 1,024 pending pushes, and
 * that throw, inside an event listener, would end the process.
 */
function createPubSub(): PubSub {
  const target = new EventTarget();
  // Thousands of subscriptions listen to one topic: lift Node's 10-listener leak warning.
  setMaxListeners(0, target);
  return {
    publish: (topic, event) => void target.dispatchEvent(new CustomEvent(topic, { detail: event })),
    subscribe: <T extends Topic>(topic: T, opts: SubscribeOptions<EventOf<T>> = {}) => {
      const backlog = new Backlog();
      return new Repeater<EventOf<T> | SubscriptionEnd>((push, stop) => {
        const { signal, filter } = opts;
        const end = (last?: SubscriptionEnd) => {
          if (last) {
            backlog.clear();
            void push(last);
          }
          stop();
        };
        const onAbort = () => end(signal?.reason instanceof SubscriptionEnd ? signal.reason : undefined);
        const listener = (e: Event) => {
          const event = (e as CustomEvent<EventOf<T>>).detail;
          if (filter && !filter(event)) return;
          if (backlog.length >= MAX_EVENTS_BEHIND) return end(new SubscriptionEnd(tooSlow()));
          void push(event);
        };
        void stop.then(() => {
          target.removeEventListener(topic, listener);
          signal?.removeEventListener('abort', onAbort);
          opts.onEnd?.();
        });
        opts.onStart?.();
        if (signal?.aborted) return onAbort();
        target.addEventListener(topic, listener);
        signal?.addEventListener('abort', onAbort, { once: true });
      }, backlog);
    },
  };
}

/** What subscriptions serve; other events (changeRejected: webhooks only) stay off the bus. */
const onBus = (e: SyncEvent) => e.type !== 'changeRejected';

/**
 * In process by default (PGlite: one process owns the database). Given a notifier, events travel
 * through it so a listener on instance A sees changes made on B: Postgres LISTEN/NOTIFY
 * (src/db/notify.ts), or Redis when EVENT_BUS names one (src/db/redis-notify.ts).
 */
export function createEventBus(opts: { notifier?: Notifier; onError?: (e: unknown) => void } = {}): EventBus {
  const pubsub = createPubSub();
  const local = (e: SyncEvent) => pubsub.publish(e.type, e as never);
  if (!opts.notifier) {
    return { pubsub, publish: (events) => events.filter(onBus).forEach(local), flushed: async () => {}, ready: Promise.resolve(), healthy: () => true, close: async () => {} };
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
    publish: (all) => {
      const events = all.filter(onBus);
      if (events.length === 0) return;
      const sent = notifier.publish(JSON.stringify(events)).catch((err) => opts.onError?.(err));
      last = last.then(() => sent);
    },
    flushed: () => last.then(() => undefined),
    ready: unsubscribe.then(() => undefined),
    healthy: () => notifier.healthy?.() ?? true,
    close: async () => {
      await (await unsubscribe)();
      await notifier.close?.();
    },
  };
}
