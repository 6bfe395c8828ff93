import type { SyncEvent } from '../../src/core/events.js';
import type { Db } from '../../src/db/client.js';
import { flushBacklog, type FlushOptions } from '../../src/sync/flush-backlog.js';

/**
 * flushBacklog listing every forced change and keeping the events it hands to `onBatch` (after
 * any `onBatch` given): what the tests compare, change by change. A run's result keeps counts and
 * its first few changes only; `count` is its `forced`.
 */
export async function flushListingAll(db: Db, opts: FlushOptions) {
  const events: SyncEvent[] = [];
  const r = await flushBacklog(db, {
    ...opts,
    listed: Number.MAX_SAFE_INTEGER,
    onBatch: async (batch) => {
      await opts.onBatch?.(batch);
      events.push(...batch);
    },
  });
  const { listed, ...counts } = r;
  return { ...counts, forced: listed, events };
}
