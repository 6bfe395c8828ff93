import { sql } from 'drizzle-orm';
import type { SyncEvent } from '../core/events.js';
import { isWebhookEvent, webhookEntityKey } from '../core/webhooks.js';
import type { Tx } from '../db/client.js';

/** The rows an insert wrote: postgres.js says `count`, PGlite `affectedRows`. */
function affectedRows(result: unknown): number {
  const r = result as { count?: unknown; affectedRows?: unknown };
  return Number(r.count ?? r.affectedRows ?? 0);
}

/**
 * The transactional outbox (DESIGN step 7): a use-case's events, written in its own transaction,
 * so a rolled-back change sends nothing and a committed one is always sent. One statement, and
 * only the events some webhook asks for (none at all while no webhook exists): the write path
 * pays for webhooks only when there are some, and never for how many (the dispatcher fans each
 * event out to its webhooks later, outside the write transactions). Answers how many rows it
 * wrote: none, and there is nothing for the delivery worker to wake for.
 */
export function writeOutbox(tx: Tx, events: readonly SyncEvent[]): Promise<number> | null {
  const wanted = events.filter(isWebhookEvent);
  if (wanted.length === 0) return null;
  const rows = wanted.map((e, n) => ({ n, type: e.type, dataset_name: e.datasetName, entity_key: webhookEntityKey(e), payload: e }));
  return insertOutbox(tx, rows);
}

// Awaited in a function of its own (as persist's statements are), so it goes out in the order called.
// The rows go as json, not jsonb, and the first condition is checked once, before them: with no
// webhook at all the rows are only checked to be JSON, never parsed into records (a flush's 500
// events cost 3.4 ms of jsonb parsing to write none).
async function insertOutbox(tx: Tx, rows: readonly object[]): Promise<number> {
  const result = await tx.execute(sql`
    insert into webhook_events /* writeOutbox */ (type, dataset_name, entity_key, payload)
    select r.type, r.dataset_name, r.entity_key, r.payload
      from json_to_recordset(${JSON.stringify(rows)}::json) as r(n int, type text, dataset_name text, entity_key text, payload jsonb)
     where exists (select 1 from webhooks)
       and exists (select 1 from webhooks w where r.type = any(w.events) and (w.datasets is null or r.dataset_name = any(w.datasets)))
     order by r.n`);
  return affectedRows(result);
}
