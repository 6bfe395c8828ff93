import type { Sink } from 'graphql-ws';
import { SyncError, TransportError } from './errors.js';
import { createEmitter, type Listener } from './events.js';
import { createExchange } from './exchange.js';
import type { FetchLike } from './http.js';
import { emptyState, queueCreate, queueEdit, type CreateInput } from './outbox.js';
import type { StorageAdapter } from './storage.js';
import { createTransport } from './transport.js';
import type { ClientState, EntityView, OutboxEntry, SyncEventName, SyncEvents, TransportMode, UpdateInput } from './types.js';
import { viewOf } from './view.js';

/**
 * The client library of entity-sync (DESIGN "Client library"; README "Client library"):
 * local edits go to a durable outbox with their offline-run bookkeeping, `view` shows the
 * pulled server state with them on top, `sync` pushes the outbox and pulls what changed.
 * Portable: the WebSocket implementation, fetch and storage are injected, nothing here needs
 * Node. Import it as `@entity-sync/client`.
 */

export interface SyncClientOptions {
  /** The service's GraphQL endpoint over HTTP, e.g. `https://sync.example.org/graphql`; the socket uses the same URL as ws(s). */
  url: string;
  /** This device; scopes its local ids on the server. */
  deviceId: string;
  /** The API token (a collector's, bound to this device); sent on every request and socket. */
  token?: string;
  storage: StorageAdapter;
  /** A WebSocket class (the browser's, or `ws` in Node). Default `globalThis.WebSocket`; null: HTTP only. */
  webSocketImpl?: unknown;
  /** Default `globalThis.fetch`. */
  fetchImpl?: FetchLike;
  /** How long a batch waits for its answer on the socket before it is resent over HTTP. Default 10 s. */
  ackTimeoutMs?: number;
  /** Changes per submitted batch (the server accepts up to 500). Default 100. */
  batchSize?: number;
  /** Datasets to pull even before the client edits in them. */
  datasets?: string[];
  /** Client ping interval on the socket; two missed pongs mean it is dead. Default 10 s. */
  pingIntervalMs?: number;
  /** Backoff of socket retries while on HTTP (doubling from baseMs to maxMs, with jitter). Default 1 s to 60 s. */
  socketRetry?: { baseMs?: number; maxMs?: number };
  /** Backoff of a change the server failed on (INTERNAL_ERROR) before a sync sends it again (doubling, with jitter). Default 1 s to 5 min. */
  resendBackoff?: { baseMs?: number; maxMs?: number };
  /** Deadline of one HTTP request. Default 30 s. */
  httpTimeoutMs?: number;
  /** How long sync() keeps pulling for versions the server acknowledged but does not hand out yet. Default 3000 ms. */
  settleMs?: number;
  /** Versions per pulled page (1-1000). Default 500. */
  pullLimit?: number;
  /** The storage key of the client's document. Default `entity-sync`. */
  storageKey?: string;
}

export interface SyncSummary {
  pushed: number;
  pulled: number;
  pending: number;
  held: number;
}

export interface SyncClient {
  /** Queues a create; returns how to name the entity: its entityId, or the `localId` given. */
  create(dataset: string, input: CreateInput): Promise<string>;
  /** Queues an update by property values or by operations; returns the change id. */
  update(entity: string, input: UpdateInput): Promise<string>;
  /** Queues a delete; returns the change id. */
  delete(entity: string): Promise<string>;
  /** The optimistic view of an entity (by entityId or this device's local id), null when unknown. */
  view(entity: string): EntityView | null;
  /** Every entity of a dataset the client knows, as viewed. */
  list(dataset: string): EntityView[];
  /** The UUID the server minted for a local id, or null while unknown. */
  entityId(localId: string): string | null;
  /** Outbox entries not yet seen in a pull. */
  pending(): readonly OutboxEntry[];
  /**
   * Pushes the outbox in batches, then pulls every dataset the client edits in or was given.
   * Rejects with a `TransportError` when the server cannot be reached or did not answer, and
   * with a `SyncError` when it failed or refused a whole request (`retryable` says whether a
   * later call can help; `UNAUTHENTICATED`: the token is refused, for good). The outbox keeps
   * everything the server did not answer for; a change the server failed on (`retry` event)
   * is sent again by a later call, after its backoff.
   */
  sync(): Promise<SyncSummary>;
  on<K extends SyncEventName>(event: K, fn: Listener<K>): () => void;
  /** Subscribes to server events over the socket (see the Subscription type); returns the unsubscribe. */
  subscribe(query: string, variables: Record<string, unknown>, sink: Sink): () => void;
  /** Any other GraphQL request, over HTTP (dashboards, datasets, conflicts). */
  request<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<T>;
  transport(): TransportMode;
  /** Closes sockets and timers and waits for pending writes to storage. */
  close(): Promise<void>;
}

/** Storage in memory (lost with the process): for tests and throwaway sessions. */
export function createMemoryStorage(): StorageAdapter {
  const docs = new Map<string, string>();
  return {
    get: async (key) => {
      const doc = docs.get(key);
      return doc === undefined ? null : JSON.parse(doc);
    },
    set: async (key, value) => {
      docs.set(key, JSON.stringify(value));
    },
  };
}

export async function createSyncClient(opts: SyncClientOptions): Promise<SyncClient> {
  const key = opts.storageKey ?? 'entity-sync';
  const state: ClientState = ((await opts.storage.get(key)) as ClientState | null) ?? emptyState();
  for (const d of opts.datasets ?? []) if (!state.datasets.includes(d)) state.datasets.push(d);
  const emitter = createEmitter((error) => console.error('entity-sync client: a listener threw', error));
  const emit = emitter.emit;
  const fetchImpl = opts.fetchImpl ?? (globalThis.fetch as unknown as FetchLike);
  const transport = createTransport({
    httpUrl: opts.url,
    wsUrl: opts.url.replace(/^http/, 'ws'),
    webSocketImpl: opts.webSocketImpl === undefined ? (globalThis as { WebSocket?: unknown }).WebSocket : opts.webSocketImpl,
    fetchImpl,
    ...(opts.token ? { token: opts.token } : {}),
    ackTimeoutMs: opts.ackTimeoutMs ?? 10_000,
    httpTimeoutMs: opts.httpTimeoutMs ?? 30_000,
    pingIntervalMs: opts.pingIntervalMs ?? 10_000,
    retryBaseMs: opts.socketRetry?.baseMs ?? 1000,
    retryMaxMs: opts.socketRetry?.maxMs ?? 60_000,
    onMode: (mode, reason) => emit('transport', { mode, reason }),
    onRefused: (reason) => emit('auth', { code: 'UNAUTHENTICATED', reason }),
  });

  // Writes go out one at a time, each a snapshot of the state when it was asked for.
  let saving: Promise<void> = Promise.resolve();
  const persist = (): Promise<void> => {
    const doc = JSON.parse(JSON.stringify(state)) as ClientState;
    saving = saving.then(() => opts.storage.set(key, doc));
    return saving;
  };

  const { push, pull } = createExchange({
    state,
    transport,
    emit,
    persist,
    deviceId: opts.deviceId,
    batchSize: opts.batchSize ?? 100,
    pullLimit: opts.pullLimit ?? 500,
    resendBaseMs: opts.resendBackoff?.baseMs ?? 1000,
    resendMaxMs: opts.resendBackoff?.maxMs ?? 300_000,
  });

  let syncing: Promise<unknown> = Promise.resolve();
  const sync = (): Promise<SyncSummary> => {
    const run = async (): Promise<SyncSummary> => {
      const pushed = await push();
      let pulled = await pull();
      // The server hands out a version only once every older transaction has ended (so a
      // pull never skips one); on a busy Postgres that horizon can lag our own commits by a
      // moment. Pull again, briefly, until what the server acknowledged as applied is seen.
      const settleBy = Date.now() + (opts.settleMs ?? 3000);
      while (state.outbox.some((e) => e.status === 'applied') && Date.now() < settleBy) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        pulled += await pull();
      }
      const summary = { pushed, pulled, pending: state.outbox.length, held: state.outbox.filter((e) => e.status === 'held').length };
      emit('synced', summary);
      return summary;
    };
    // One sync at a time: a second call runs after the first, so it pushes what was edited meanwhile.
    const next = syncing.then(run, run);
    syncing = next.catch(() => undefined);
    return next;
  };

  const edit = async <T>(make: () => T): Promise<T> => {
    const made = make();
    await persist();
    return made;
  };

  return {
    create: (dataset, input) => edit(() => queueCreate(state, opts.deviceId, dataset, input).ref),
    update: (entity, input) => edit(() => queueEdit(state, opts.deviceId, entity, Array.isArray(input) ? { action: 'UPDATE', operations: input } : { action: 'UPDATE', data: input }).id),
    delete: (entity) => edit(() => queueEdit(state, opts.deviceId, entity, { action: 'DELETE' }).id),
    view: (entity) => viewOf(state, entity),
    list: (dataset) => {
      const refs = new Set<string>(Object.entries(state.entities).filter(([, e]) => e.dataset === dataset).map(([id]) => id));
      for (const e of state.outbox) if (e.change.dataset === dataset && e.change.action === 'CREATE') refs.add(e.change.entityId ?? e.change.localId ?? '');
      const views = new Map<string, EntityView>();
      for (const r of refs) {
        const v = viewOf(state, r);
        if (v && !v.deleted) views.set(v.id ?? `local:${v.localId ?? r}`, v);
      }
      return [...views.values()];
    },
    entityId: (localId) => state.localIds[localId] ?? null,
    pending: () => state.outbox,
    sync,
    on: emitter.on,
    subscribe: (query, variables, sink) => transport.subscribe(query, variables, sink),
    request: async <T>(query: string, variables: Record<string, unknown> = {}) => {
      const res = await transport.post(query, variables);
      if (res.errors?.length) throw new SyncError(String(res.errors[0]?.extensions?.code ?? 'GRAPHQL_ERROR'), res.errors.map((e) => e.message).join('; '), res.status);
      return res.data as T;
    },
    transport: () => transport.mode(),
    close: async () => {
      transport.close();
      await syncing;
      await saving;
    },
  };
}

// The errors are part of the API (sync() rejects with them): exported, so `instanceof` works.
export { SyncError, TransportError };
export type { CreateInput, EntityView, OutboxEntry, StorageAdapter, SyncEvents, UpdateInput };
