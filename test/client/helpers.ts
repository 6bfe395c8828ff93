import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { createMemoryStorage, createSyncClient, type SyncClient, type SyncClientOptions } from '../../packages/client/src/sync-client.js';
import type { SyncEventName, SyncEvents } from '../../packages/client/src/types.js';
import type { TestApp } from '../helpers/app.js';

/** Shared by the client tests: a client with short timeouts, an event recorder, datasets, server reads. */

export async function newClient(url: string, opts: Partial<SyncClientOptions> = {}): Promise<SyncClient> {
  return createSyncClient({
    url,
    deviceId: `device-${randomBytes(4).toString('hex')}`,
    storage: createMemoryStorage(),
    webSocketImpl: WebSocket,
    ackTimeoutMs: 2000,
    pingIntervalMs: 1000,
    socketRetry: { baseMs: 100, maxMs: 400 },
    httpTimeoutMs: 5000,
    ...opts,
  });
}

export type Recorded = { [K in SyncEventName]: SyncEvents[K][] };

/** Every event the client emits, by name. */
export function record(client: SyncClient): Recorded {
  const names: SyncEventName[] = ['conflict', 'held', 'applied', 'rejected', 'retry', 'auth', 'transport', 'synced', 'left'];
  const out = Object.fromEntries(names.map((n) => [n, []])) as unknown as Recorded;
  for (const n of names) client.on(n, (p) => (out[n] as unknown[]).push(p));
  return out;
}

export async function createDataset(t: TestApp, properties: string[]): Promise<string> {
  const name = `ds_${randomBytes(5).toString('hex')}`;
  const res = await t.gql(`mutation($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) { __typename } }`, { n: name, p: properties });
  if (res.data?.createDataset?.__typename !== 'MutationCreateDatasetSuccess') throw new Error(JSON.stringify(res));
  return name;
}

export interface ServerEntity {
  id: string;
  label: string;
  data: Record<string, unknown>;
  version: number;
  conflict: 'SOFT' | 'HARD' | null;
  deleted: boolean;
  versions: { version: number; changeId: string; conflict: string | null; conflictingProperties: string[]; deviceId: string | null; source: string }[];
}

export async function serverEntity(t: Pick<TestApp, 'gql'>, id: string): Promise<ServerEntity | null> {
  const res = await t.gql(`query($id: ID!) { entity(id: $id) { id label data version conflict deleted
    versions(limit: 1000) { version changeId conflict conflictingProperties deviceId source } } }`, { id });
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data.entity;
}

/** Waits until `check` holds, polling; throws naming `what` after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
