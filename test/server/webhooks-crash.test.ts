import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { domain, ok } from '../helpers/domain.js';
import { spawnService, waitUntil, type Service } from '../helpers/live.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

/**
 * Issue 21: an instance killed (-9) in the middle of a delivery leaves it leased; once the lease
 * runs out another instance (Postgres) or the restarted one (PGlite: one process owns the data
 * folder) sends it again: the receiver gets the event, with the same id, and it ends DELIVERED.
 */

const services: Service[] = [];
let receiver: Receiver | undefined;
let cleanup: () => Promise<void> = async () => {};
afterAll(async () => {
  for (const s of services) await s.stop().catch(() => {});
  await receiver?.close();
  await cleanup();
});

const http = (url: string): TestApp => ({ url, gql: async (query: string, variables?: Record<string, unknown>) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { ...(await res.json()), status: res.status };
} }) as unknown as TestApp;

it('kill -9 mid-delivery: delivered by the other or the restarted instance, same event id', async () => {
  let env: Record<string, string>;
  if (backend === 'postgres') {
    const database = await freshDatabase();
    cleanup = database.close;
    env = { DATABASE_URL: database.url! };
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'es-webhook-crash-'));
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
    env = { DATA_DIR: dir };
  }
  // A request may take 5 s: the lease (5 s + 5 s) outlives the kill by a few seconds.
  env = { ...env, WEBHOOK_TIMEOUT_SECONDS: '5', LOG_LEVEL: 'warn' };
  receiver = await startReceiver({ mode: 'hang' });
  const first = await spawnService(env);
  services.push(first);
  const d = domain(http(first.url));
  const ds = await d.createDataset(['height']);
  const made = ok(await http(first.url).gql(`mutation($url: String!, $ds: [String!]) { createWebhook(url: $url, datasets: $ds, events: [ENTITY_CHANGED]) {
    ... on MutationCreateWebhookSuccess { data { secret webhook { id } } } } }`, { url: receiver.url, ds: [ds] })).createWebhook.data;
  receiver.secret = made.secret;
  const entity = await d.create(ds, 'Tree', { height: 1 });
  await waitUntil(() => receiver!.held === 1, 'the delivery to be in flight', 30_000);
  const eventId = receiver.requests[0]!.id;

  // Postgres: the other instance is up before the kill; PGlite: the same folder, restarted after it.
  const other = backend === 'postgres' ? await spawnService(env) : null;
  process.kill(first.pid, 'SIGKILL');
  await waitUntil(() => /ended by SIGKILL/.test(first.output()), 'the first instance to die', 30_000);
  receiver.mode = 'ok';
  const second = other ?? (await spawnService(env));
  services.push(second);

  await waitUntil(() => receiver!.requests.length >= 2, 'the delivery to be sent again', 30_000, 50);
  // Every request carried the one event id. Usually two: the one the kill cut, the one after. On a
  // loaded machine the first instance may time out its first try (5 s) before the kill and try
  // again, so a third: each is an attempt, counted below.
  expect(new Set(receiver.requests.map((r) => r.id))).toEqual(new Set([eventId]));
  expect(receiver.unique().map((r) => [r.body.type, r.body.data.entityId, r.body.data.version, r.verified])).toEqual([['entityChanged', entity, 1, true]]);
  const listed = await waitUntil(async () => {
    const nodes = ok(await http(second.url).gql(`query($id: ID!) { webhookDeliveries(webhookId: $id) { nodes { eventId status attempts lastStatusCode } } }`, { id: made.webhook.id })).webhookDeliveries.nodes;
    return nodes[0]?.status === 'DELIVERED' && nodes;
  }, 'the delivery to be settled', 30_000);
  expect(listed).toEqual([{ eventId, status: 'DELIVERED', attempts: receiver.requests.length, lastStatusCode: 204 }]);
  // Two or three processes start here: slow on a loaded machine.
}, 180_000);
