import type postgres from 'postgres';

/**
 * A cross-instance message channel over Postgres LISTEN/NOTIFY. postgres.js keeps the LISTEN
 * on a dedicated connection and re-issues it after a reconnect, so a dropped database
 * connection heals by itself. Payloads are small JSON (ids, never documents: NOTIFY caps
 * a payload at 8000 bytes).
 */
export interface Notifier {
  publish(payload: string): Promise<void>;
  subscribe(onMessage: (payload: string) => void): Promise<() => Promise<void>>;
}

export function postgresNotifier(sql: postgres.Sql, channel = 'entity_sync_events'): Notifier {
  return {
    publish: async (payload) => {
      await sql.notify(channel, payload);
    },
    subscribe: async (onMessage) => {
      const listening = await sql.listen(channel, onMessage);
      return () => listening.unlisten();
    },
  };
}
