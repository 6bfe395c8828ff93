import { Redis } from 'ioredis';
import type { Notifier } from './notify.js';

/**
 * The event bus over Redis pub/sub (EVENT_BUS=redis://…), instead of Postgres LISTEN/NOTIFY,
 * whose global lock at every notifying commit caps how many can commit per second. Same contract
 * as postgresNotifier: one message per commit's events, ids only, every instance (this one too)
 * receives what is published.
 *
 * ioredis directly rather than graphql-yoga's Redis event target: that target publishes one
 * message per event and topic without awaiting it, so a broker outage would surface as an
 * unhandled rejection (which ends this process, see main.ts) and a commit's events could
 * interleave with another's. Here a publish is awaited, fails fast while Redis is down (no
 * offline queue to grow without bound), and the outage is reported once each way.
 */
export class BrokerUnavailableError extends Error {
  constructor(message = 'the event bus broker is unreachable') {
    super(message);
    this.name = 'BrokerUnavailableError';
  }
}

export interface RedisNotifier extends Notifier {
  healthy(): boolean;
  close(): Promise<void>;
}

export function redisNotifier(
  url: string,
  opts: { channel?: string; onDown?: (error: unknown) => void; onUp?: () => void; connectTimeoutMs?: number } = {},
): RedisNotifier {
  const channel = opts.channel ?? 'entity_sync_events';
  // Reconnect for ever, at most every 2 s: an outage heals by itself.
  const common = { lazyConnect: false, retryStrategy: (times: number) => Math.min(100 * times, 2000), connectTimeout: opts.connectTimeoutMs ?? 5000 };
  const publisher = new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  // The subscriber queues its SUBSCRIBE until connected and resubscribes after a reconnect.
  const subscriber = new Redis(url, { ...common, maxRetriesPerRequest: null, autoResubscribe: true });
  let down = false;
  let wasUp = false;
  const up = () => publisher.status === 'ready' && subscriber.status === 'ready';
  const changed = (error?: unknown) => {
    if (up()) {
      wasUp = true;
      if (down) opts.onUp?.();
      down = false;
    } else if (!down && (wasUp || error !== undefined)) {
      // While the two connections first come up one after the other, nothing is wrong yet.
      down = true;
      opts.onDown?.(error ?? new BrokerUnavailableError());
    }
  };
  for (const client of [publisher, subscriber]) {
    // Without a listener ioredis prints every failed reconnect; the transitions are reported instead.
    client.on('error', (error) => changed(error));
    client.on('ready', () => changed());
    client.on('close', () => changed());
    client.on('end', () => changed());
  }
  let closed = false;
  return {
    publish: async (payload) => {
      if (publisher.status !== 'ready') throw new BrokerUnavailableError();
      await publisher.publish(channel, payload);
    },
    subscribe: async (onMessage) => {
      const listener = (from: string, message: string) => {
        if (from === channel) onMessage(message);
      };
      subscriber.on('message', listener);
      // Not awaited past a short while: an instance started while Redis is down still serves
      // (its /ready says why not), and the queued SUBSCRIBE goes out when Redis comes back.
      await Promise.race([subscriber.subscribe(channel).catch(() => {}), new Promise((resolve) => setTimeout(resolve, common.connectTimeout).unref())]);
      return async () => {
        subscriber.off('message', listener);
        if (subscriber.status === 'ready') await subscriber.unsubscribe(channel).catch(() => {});
      };
    },
    healthy: () => !closed && up(),
    close: async () => {
      closed = true;
      // quit() waits for Redis to answer, which an outage never does: disconnect() does not wait.
      for (const client of [publisher, subscriber]) {
        if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
        else client.disconnect();
      }
    },
  };
}
