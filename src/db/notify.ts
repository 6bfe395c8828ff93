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

interface Waiting {
  payload: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Splits messages waiting to be sent, in order, into what goes out together: runs of small ones
 * (at most `maxRunBytes` of them, so a statement stays small) and each large one alone. Within one transaction
 * Postgres delivers a repeated message once, so a message equal to one already in its run begins
 * the next run: every message published is delivered.
 */
export function sendingGroups<T extends { payload: string }>(waiting: readonly T[], maxRunBytes = 1 << 20): { large: boolean; items: T[] }[] {
  const groups: { large: boolean; items: T[] }[] = [];
  let run: T[] = [];
  let runBytes = 0;
  let inRun = new Set<string>();
  const close = () => {
    if (run.length > 0) groups.push({ large: false, items: run });
    run = [];
    runBytes = 0;
    inRun = new Set();
  };
  for (const w of waiting) {
    const bytes = Buffer.byteLength(w.payload);
    if (bytes > INLINE_LIMIT) {
      close();
      groups.push({ large: true, items: [w] });
      continue;
    }
    if (inRun.has(w.payload) || runBytes + bytes > maxRunBytes) close();
    run.push(w);
    runBytes += bytes;
    inRun.add(w.payload);
  }
  close();
  return groups;
}

export function postgresNotifier(sql: postgres.Sql, channel = 'entity_sync_events'): Notifier {
  // Messages leave in the order they were published, by one sender at a time. Whatever was
  // published while it waited for Postgres goes out together at its next turn: a run of small
  // messages as one statement (one round trip and one pool connection for all of them), a large
  // one by its stored row. Sent one by one, a busy pool let them queue faster than they left
  // (the bench's load phase: tens of thousands of messages held in memory, arriving ever later).
  let waiting: Waiting[] = [];
  let sending = false;
  let receiving: Promise<unknown> = Promise.resolve();
  const sendLarge = async (payload: string) => {
    // Table event_payloads (src/db/events.ts). Rows are read right after their notify; an
    // hour is ample for a slow listener.
    const [row] = await sql`insert into event_payloads /* storeEventPayload */ (payload) values (${payload}) returning id`;
    await sql`delete from event_payloads /* pruneEventPayloads */ where created_at < now() - interval '1 hour'`;
    await sql.notify(channel, `r${row!.id}`);
  };
  const sendSmall = async (payloads: readonly string[]) => {
    // pg_notify is volatile, so Postgres calls it after the sort: in the order given.
    await sql`select /* notifyEvents */ pg_notify(${channel}, m.p) from unnest(${payloads as string[]}::text[]) with ordinality as m(p, n) order by m.n`;
  };
  const send = async () => {
    sending = true;
    while (waiting.length > 0) {
      const taken = waiting;
      waiting = [];
      for (const group of sendingGroups(taken)) {
        try {
          if (group.large) await sendLarge(group.items[0]!.payload);
          else await sendSmall(group.items.map((w) => `i${w.payload}`));
          for (const w of group.items) w.resolve();
        } catch (err) {
          for (const w of group.items) w.reject(err);
        }
      }
    }
    sending = false;
  };
  return {
    publish: (payload) =>
      new Promise<void>((resolve, reject) => {
        waiting.push({ payload, resolve, reject });
        if (!sending) void send();
      }),
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
