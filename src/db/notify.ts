import type postgres from 'postgres';

/**
 * A cross-instance message channel over Postgres LISTEN/NOTIFY. postgres.js keeps the LISTEN
 * on a dedicated connection and re-issues it after a reconnect, so a dropped database
 * connection heals by itself. NOTIFY caps a payload at 8000 bytes: a larger message is
 * stored in event_payloads and only its id is notified (ids, never documents, on the wire).
 */
export interface Notifier {
  publish(payload: string): Promise<void>;
  subscribe(onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  /** False while the channel cannot carry messages (a broker out of reach); absent: always fine. */
  healthy?(): boolean;
  /** Releases what the channel holds of its own (a broker's connections); the database is closed by its owner. */
  close?(): Promise<void>;
}

const INLINE_LIMIT = 7000;

export function postgresNotifier(sql: postgres.Sql, channel = 'entity_sync_events'): Notifier {
  // One queue each way keeps messages in the order they were published and received.
  let sending: Promise<unknown> = Promise.resolve();
  let receiving: Promise<unknown> = Promise.resolve();
  return {
    publish: (payload) => {
      const send = async () => {
        if (Buffer.byteLength(payload) <= INLINE_LIMIT) return sql.notify(channel, `i${payload}`);
        // Table event_payloads (src/db/events.ts). Rows are read right after their notify; an
        // hour is ample for a slow listener.
        const [row] = await sql`insert into event_payloads /* storeEventPayload */ (payload) values (${payload}) returning id`;
        await sql`delete from event_payloads /* pruneEventPayloads */ where created_at < now() - interval '1 hour'`;
        return sql.notify(channel, `r${row!.id}`);
      };
      const done = sending.then(send, send);
      sending = done.catch(() => {});
      return done.then(() => undefined);
    },
    subscribe: async (onMessage) => {
      const listening = await sql.listen(channel, (message) => {
        receiving = receiving.then(async () => {
          if (message.startsWith('i')) return onMessage(message.slice(1));
          const rows = await sql`select /* eventPayload */ payload from event_payloads where id = ${Number(message.slice(1))}`;
          if (rows[0]) onMessage(rows[0].payload as string);
        }).catch(() => {});
      });
      return () => listening.unlisten();
    },
  };
}
