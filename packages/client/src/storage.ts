/**
 * Where a sync client keeps its state: JSON documents by key, read and written whole.
 *
 * The client stores everything it must not lose (the outbox, the open offline runs, the last
 * pulled server state, cursors, local-id mappings) and awaits `set` before it reports an edit
 * as made, so `set` must be durable when it resolves and atomic per key (a reader sees the old
 * document or the new one, never a mix). Nothing else is asked of a back end:
 *
 * - IndexedDB: one object store, keyPath-less, `get(key)` → `store.get(key)`, `set(key, doc)`
 *   → `store.put(doc, key)` in a `readwrite` transaction, resolved on its `complete` event.
 * - SQLite: `create table docs (key text primary key, doc text not null)`; `get` selects and
 *   `JSON.parse`s, `set` runs `insert … on conflict (key) do update set doc = excluded.doc`.
 * - Files (Node): `createFileStorage(dir)` in `file-storage.ts`, one file per key, written to a
 *   temporary file and renamed over the old one.
 * - Memory: `createMemoryStorage()` in `sync-client.ts`, for tests and throwaway sessions.
 */
export interface StorageAdapter {
  /** The document stored under `key`, or null when there is none. */
  get(key: string): Promise<unknown>;
  /** Stores `value` (JSON-serialisable) under `key`, replacing what was there. */
  set(key: string, value: unknown): Promise<void>;
}
