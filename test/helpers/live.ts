import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { templateFolder } from './global-setup.js';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { EventBus } from '../../src/graphql/pubsub.js';

/** Helpers for live events: bounded waits, a graphql-ws client, an SSE client, subscription tracking. */

/** Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws with `what`). */
export async function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000, everyMs = 10): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Rejects after `ms` with a message naming `what`, else the promise's own outcome. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Resolves once a probe of `url` (one every 50 ms) has waited `ms` for its answer: the service's
 * event loop is busy. A spawned service on PGlite runs its database in its own thread, so a
 * stalled /health is how a test outside it sees a long transaction under way.
 */
export function stalled(url: string, ms: number): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const pending = new Set<number>();
      const timer = setInterval(() => {
        const sent = Date.now();
        if ([...pending].some((at) => sent - at >= ms)) {
          clearInterval(timer);
          resolve();
          return;
        }
        pending.add(sent);
        void fetch(url).then(
          () => pending.delete(sent),
          () => pending.delete(sent),
        );
      }, 50);
    }),
    60_000,
    'the service to be busy with the batch',
  );
}

/** The four subscriptions, each with every field a test checks; `$ds` dataset, optional `$e` entity. */
const EVENT_ENTITY = 'entity { id label version conflict data }';
export const CONFLICT_SUB = `subscription($ds: String!, $e: ID) { conflictDetected(dataset: $ds, entityId: $e) {
  dataset entityId version type conflictingProperties ${EVENT_ENTITY} } }`;
export const HELD_SUB = `subscription($ds: String!, $e: ID) { changeHeld(dataset: $ds, entityId: $e) {
  dataset entityId changeId branchId waitsFor heldChange { changeId baseVersion waitsFor } } }`;
export const FLUSHED_SUB = `subscription($ds: String!, $e: ID) { backlogFlushed(dataset: $ds, entityId: $e) {
  dataset entityId reason changes { changeId version } entity { version data } } }`;
export const CHANGED_SUB = `subscription($ds: String!, $e: ID) { entityChanged(dataset: $ds, entityId: $e) { dataset entityId version entity { version } } }`;

export const wsUrl = (httpUrl: string): string => httpUrl.replace(/^http/, 'ws');

/**
 * Counts the subscriptions the server holds on a bus, per topic. Patches the bus's pubsub so that
 * the listener is registered as soon as the subscribe resolver runs (a yoga pubsub registers it
 * lazily), which gives tests a deterministic "the subscription is live" point before they submit.
 */
export function trackSubscriptions(bus: EventBus) {
  const active = new Map<string, number>();
  let opened = 0;
  const pubsub = bus.pubsub as unknown as { subscribe: (...args: unknown[]) => AsyncIterable<unknown> };
  const original = pubsub.subscribe.bind(pubsub);
  const bump = (topic: string, by: number) => active.set(topic, (active.get(topic) ?? 0) + by);
  pubsub.subscribe = (...args: unknown[]) => {
    const topic = String(args[0]);
    const it = original(...args)[Symbol.asyncIterator]();
    let first: Promise<IteratorResult<unknown>> | null = it.next(); // registers the listener now
    let ended = false;
    const end = () => {
      if (!ended) {
        ended = true;
        bump(topic, -1);
      }
    };
    opened += 1;
    bump(topic, 1);
    const primed: AsyncIterableIterator<unknown> = {
      next: () => {
        const p = first ?? it.next();
        first = null;
        return p.then((r) => {
          if (r.done) end();
          return r;
        });
      },
      return: async (value?: unknown) => {
        end();
        return it.return ? it.return(value) : { done: true, value };
      },
      throw: async (error?: unknown) => {
        end();
        if (it.throw) return it.throw(error);
        throw error;
      },
      [Symbol.asyncIterator]() {
        return primed;
      },
    };
    return primed;
  };
  return {
    /** Live subscriptions on `topic` (all topics when absent). */
    active: (topic?: string): number => (topic ? (active.get(topic) ?? 0) : [...active.values()].reduce((a, b) => a + b, 0)),
    /** Subscriptions ever opened. */
    opened: (): number => opened,
    /** Waits until at least `n` subscriptions on `topic` are live. */
    waitActive: (topic: string, n = 1, timeoutMs = 3000) => waitUntil(() => (active.get(topic) ?? 0) >= n, `${n} live ${topic} subscription(s)`, timeoutMs),
  };
}

export type Tracker = ReturnType<typeof trackSubscriptions>;

/** What one subscription has delivered so far. */
export interface Stream<T = any> {
  /** The `data` of every `next`, in order of arrival. */
  values: T[];
  /** For each value, a number from one counter shared by every stream: the order of arrival across streams. */
  stamps: number[];
  /** GraphQL errors from a `next`, or a transport error. */
  errors: unknown[];
  completed: boolean;
  /** Waits until at least `n` values arrived and returns them all. */
  take(n: number, timeoutMs?: number): Promise<T[]>;
  close(): void;
}

let arrivals = 0;

function stream<T>(): Stream<T> & { push(v: T): void } {
  const s = {
    values: [] as T[],
    stamps: [] as number[],
    errors: [] as unknown[],
    completed: false,
    push(v: T) {
      s.values.push(v);
      s.stamps.push(++arrivals);
    },
    async take(n: number, timeoutMs = 4000) {
      await waitUntil(() => s.values.length >= n || s.errors.length > 0, `${n} event(s) (got ${JSON.stringify(s.values)})`, timeoutMs);
      if (s.errors.length) throw new Error(`subscription failed: ${JSON.stringify(s.errors)}`);
      return s.values;
    },
    close: () => {},
  };
  return s;
}

/** A graphql-ws client (subprotocol graphql-transport-ws) on the server's own URL. */
export function socketClient(httpUrl: string, opts: { keepAlive?: number; token?: string } = {}) {
  /** How the server closed the socket, once it did. */
  const closed: { code?: number; reason?: string } = {};
  const client: Client = createClient({
    url: wsUrl(httpUrl),
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    ...(opts.keepAlive ? { keepAlive: opts.keepAlive } : {}),
    ...(opts.token ? { connectionParams: { authorization: `Bearer ${opts.token}` } } : {}),
    on: {
      closed: (e) => {
        closed.code = (e as { code?: number }).code;
        closed.reason = (e as { reason?: string }).reason;
      },
    },
    onNonLazyError: () => {},
  });
  const streams: Stream[] = [];

  /** Starts a subscription; its events gather in the returned stream. */
  function subscribe<T = any>(query: string, variables: Record<string, unknown> = {}): Stream<T> {
    const s = stream<T>();
    const dispose = client.subscribe<Record<string, unknown>>(
      { query, variables },
      {
        next: (r) => {
          if (r.errors?.length) s.errors.push(r.errors);
          if (r.data) s.push(Object.values(r.data)[0] as T);
        },
        error: (e) => s.errors.push(e),
        complete: () => {
          s.completed = true;
        },
      },
    );
    s.close = dispose;
    streams.push(s);
    return s;
  }

  /** A query or mutation over the socket: its single result. */
  function request<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<{ data?: T; errors?: readonly { message: string }[] }> {
    return new Promise((resolve, reject) => {
      let result: { data?: T; errors?: readonly { message: string }[] } = {};
      client.subscribe<T>(
        { query, variables },
        {
          next: (r) => {
            result = { ...(r.data ? { data: r.data as T } : {}), ...(r.errors ? { errors: r.errors } : {}) };
          },
          error: reject,
          complete: () => resolve(result),
        },
      );
    });
  }

  return {
    client,
    closed,
    subscribe,
    request,
    close: async () => {
      for (const s of streams) s.close();
      await client.dispose();
    },
  };
}

export type SocketClient = ReturnType<typeof socketClient>;

/**
 * A Server-Sent Events subscription, parsed by hand from the response stream: frames separated
 * by a blank line, `event:` and `data:` fields, `:` comments (yoga's pings) ignored.
 */
export function sseSubscribe<T = any>(
  httpUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  opts: { token?: string } = {},
): Stream<T> & { opened: Promise<Response>; frames: { event: string; data: string }[] } {
  const s = stream<T>() as Stream<T> & { push(v: T): void; opened: Promise<Response>; frames: { event: string; data: string }[] };
  s.frames = [];
  const abort = new AbortController();
  s.close = () => abort.abort();
  s.opened = fetch(httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  void (async () => {
    try {
      const res = await s.opened;
      if (!res.body) throw new Error(`no body, status ${res.status}`);
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') event = value;
            else if (field === 'data') data.push(value);
          }
          if (data.length === 0 && event === 'message') continue; // a ping
          const text = data.join('\n');
          s.frames.push({ event, data: text });
          if (event === 'complete') {
            s.completed = true;
          } else if (event === 'next' || event === 'message') {
            const r = JSON.parse(text) as { data?: Record<string, unknown>; errors?: unknown[] };
            if (r.errors?.length) s.errors.push(r.errors);
            if (r.data) s.push(Object.values(r.data)[0] as T);
          }
        }
      }
      s.completed = true;
    } catch (e) {
      if (!abort.signal.aborted) s.errors.push(e);
    }
  })();
  return s;
}

/**
 * A spawned process's PGlite data folder: a fresh one (`memory://`, or a folder the test made and
 * left empty) starts as a copy of the migrated template (global-setup.ts), so a start costs no
 * initdb and no migrations (seconds each). `memory://` becomes a temporary folder, removed when the
 * process ends: as fresh, and as gone afterwards.
 */
export function seeded(env: Record<string, string>): { env: Record<string, string>; cleanup: () => void } {
  const pglite = !(env.DATABASE_URL ?? process.env.DATABASE_URL);
  const dir = env.DATA_DIR;
  if (!pglite || dir === undefined) return { env, cleanup: () => {} };
  if (dir === 'memory://') {
    const temp = mkdtempSync(join(tmpdir(), 'es-memory-'));
    cpSync(templateFolder, temp, { recursive: true });
    return { env: { ...env, DATA_DIR: temp }, cleanup: () => rmSync(temp, { recursive: true, force: true }) };
  }
  if (existsSync(dir) && readdirSync(dir).length === 0) cpSync(templateFolder, dir, { recursive: true });
  return { env, cleanup: () => {} };
}

/**
 * Runs the service entry point (`node --import tsx src/main.ts`) as its own process with `env`
 * (PORT 0 and HOST 127.0.0.1 unless given) and waits for its "entity-sync listening on <url>" line.
 * Starting a process is slow (PGlite starts and migrates; tsx compiles), so that wait is long.
 */
export async function spawnService(given: Record<string, string>, startTimeoutMs = 60_000) {
  const { env, cleanup } = seeded(given);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', GRAPHIQL: 'false', FLUSH_INTERVAL_SECONDS: '0', ANONYMOUS_ROLE: 'admin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // A process ended by a signal has no exit code: its output says which signal it was.
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      if (signal) output += `\n[the process ended by ${signal}]`;
      resolve(code);
    }),
  );
  void exited.then(cleanup);
  child.stdout.on('data', (b) => (output += b));
  child.stderr.on('data', (b) => (output += b));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async (): Promise<number | null> => {
    if (!gone) child.kill('SIGTERM');
    try {
      return await within(exited, 10_000, 'the service process to exit');
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
  };
  try {
    const line = await waitUntil(() => gone || /entity-sync listening on (http:\/\/\S+)/.exec(output), 'the "listening on" line', startTimeoutMs, 50);
    if (line === true) throw new Error(`the service exited before listening:\n${output}`);
    return { url: line[1]!, pid: child.pid!, output: () => output, stop };
  } catch (e) {
    await stop().catch(() => {});
    throw new Error(`${(e as Error).message}\noutput so far:\n${output}`);
  }
}

export type Service = Awaited<ReturnType<typeof spawnService>>;

/**
 * Runs `node --import tsx src/main.ts ...args` to its end (an operator command, or a start that
 * is expected to refuse) with `env` over this process's environment; its exit code and output.
 */
export function runMain(args: readonly string[], given: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { env, cleanup } = seeded(given);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', GRAPHIQL: 'false', FLUSH_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  const ended = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  void ended.then(cleanup, cleanup);
  return within(ended, timeoutMs, `main.ts ${args.join(' ')} to exit`).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  });
}
