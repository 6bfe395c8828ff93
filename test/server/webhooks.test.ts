import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, useApp, type TestApp } from '../helpers/app.js';
import { domain, offline, offlineRun, ok } from '../helpers/domain.js';
import { waitUntil } from '../helpers/live.js';
import { startReceiver, type Received, type Receiver } from '../helpers/receiver.js';

/**
 * Issue 21, over real HTTP: webhooks registered through the API, a real receiver on 127.0.0.1
 * that checks every signature with the Standard Webhooks library, and a scripted workload whose
 * every event must arrive exactly once (after dedupe by `webhook-id`), in order per entity.
 */

const FAST = { pollMs: 100, timeoutMs: 2000, retry: { retryForMs: 60_000, backoffBaseMs: 200, maxBackoffMs: 1000 } };
const t = useApp({ flushIntervalSeconds: 0, webhooks: FAST });
const d = domain(t);
const o = offline(t);
const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
});

const CREATE = `mutation($url: String!, $ds: [String!], $ev: [WebhookEvent!]!) { createWebhook(url: $url, datasets: $ds, events: $ev) {
  __typename ... on MutationCreateWebhookSuccess { data { secret webhook { id url datasets events } } } ... on Error { code message } } }`;
const DELIVERIES = `query($id: ID!, $first: Int, $after: String, $status: WebhookDeliveryStatus) {
  webhookDeliveries(webhookId: $id, first: $first, after: $after, status: $status) {
    pageInfo { hasNextPage endCursor }
    nodes { id eventId eventType dataset entityId payload status attempts lastStatusCode lastError deliveredAt nextAttemptAt } } }`;
const ALL_EVENTS = ['ENTITY_CHANGED', 'CONFLICT_DETECTED', 'CHANGE_HELD', 'BACKLOG_FLUSHED', 'CONFLICT_RESOLVED', 'CHANGE_REJECTED'];

/** A receiver and a webhook sending to it; the receiver verifies with the webhook's secret. */
async function hook(app: TestApp, datasets: string[] | null, events = ALL_EVENTS, mode: Receiver['mode'] = 'ok') {
  const receiver = await startReceiver({ mode });
  receivers.push(receiver);
  const r = ok(await app.gql(CREATE, { url: receiver.url, ds: datasets, ev: events })).createWebhook;
  expect(r.__typename, JSON.stringify(r)).toBe('MutationCreateWebhookSuccess');
  expect(r.data.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  expect(r.data.webhook).toMatchObject({ url: receiver.url, datasets, events });
  receiver.secret = r.data.secret;
  return { receiver, id: r.data.webhook.id as string };
}

async function deliveries(app: TestApp, id: string, vars: Record<string, unknown> = {}) {
  return ok(await app.gql(DELIVERIES, { id, first: 100, ...vars })).webhookDeliveries;
}
const counts = async (app: TestApp, id: string) =>
  (ok(await app.gql('{ webhooks { id deliveryCounts { pending delivered failed } } }')).webhooks as { id: string; deliveryCounts: object }[]).find((w) => w.id === id)!.deliveryCounts;

/** What a receiver keeps of an event, compactly: its type and the fact that tells it apart. */
function brief(r: Received): string {
  const x = r.body.data;
  const fact = x.version ?? x.waitsFor ?? x.code ?? '';
  return `${r.body.type}:${fact}${x.reason ? `:${x.reason}` : ''}`;
}
/** The first arrival of each event id, grouped by entity, in arrival order. */
function byEntity(received: Received[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of received) (out[r.body.data.entityId] ??= []).push(brief(r));
  return out;
}

describe('a scripted workload reaches its webhooks', () => {
  it('every event once after dedupe, signed, in order per entity; filtered by dataset and event type; listed with its deliveries', async () => {
    const ds = await d.createDataset(['height', 'species', 'note']);
    const other = await d.createDataset(['height', 'species']);
    const all = await hook(t, [ds]);
    const conflictsEverywhere = await hook(t, null, ['CONFLICT_DETECTED']);

    // A: two online edits on version 1 (SOFT), resolved, then a refused change.
    const a = await d.create(ds, 'A', { height: 1 });
    await d.update(ds, a, 1, { height: 2 });
    expect(await d.update(ds, a, 1, { species: 'oak' })).toMatchObject({ version: 3, conflict: 'SOFT' });
    // B: an offline run arriving backwards: two held, then released by the first.
    const b = await d.create(ds, 'B', { height: 1 });
    const run = offlineRun(ds, b, 1);
    const [third, second] = [run.update(3, { note: 'c' }), run.update(2, { note: 'b' })];
    expect(await o.one(third)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect(await o.one(second)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(run.update(1, { height: 5 }))).toMatchObject({ outcome: 'APPLIED', version: 2, released: [{ version: 3 }, { version: 4 }] });
    // C: a held change forced by the flush.
    const c = await d.create(ds, 'C', { height: 1 });
    expect(await o.one(offlineRun(ds, c, 1).update(2, { note: 'late' }))).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    const flushed = ok(await t.gql('mutation($ds: String) { flushBacklog(olderThanSeconds: 0, dataset: $ds) { changes { outcome version } } }', { ds })).flushBacklog.changes;
    expect(flushed).toEqual([{ outcome: 'APPLIED', version: 2 }]);
    expect(ok(await t.gql('mutation($id: ID!) { resolveConflict(entityId: $id, version: 3) { __typename } }', { id: a })).resolveConflict.__typename).toBe('MutationResolveConflictSuccess');
    const refused = await d.update(ds, a, 3, { colour: 'red' });
    expect(refused).toMatchObject({ outcome: 'REJECTED', error: { code: 'UNKNOWN_PROPERTY' } });
    // Another dataset: only the webhook of every dataset hears of its conflict.
    const e = await d.create(other, 'E', { height: 1 });
    await d.update(other, e, 1, { height: 2 });
    expect(await d.update(other, e, 1, { species: 'elm' })).toMatchObject({ conflict: 'SOFT' });

    const got = await all.receiver.waitFor(18);
    expect(byEntity(got)).toEqual({
      [a]: ['entityChanged:1', 'entityChanged:2', 'entityChanged:3', 'conflictDetected:3', 'conflictResolved:3', 'changeRejected:UNKNOWN_PROPERTY'],
      [b]: ['entityChanged:1', 'changeHeld:2', 'changeHeld:1', 'entityChanged:2', 'entityChanged:3', 'entityChanged:4', 'backlogFlushed::RELEASED'],
      [c]: ['entityChanged:1', 'changeHeld:1', 'entityChanged:2', 'conflictDetected:2', 'backlogFlushed::FORCED'],
    });
    const conflicts = await conflictsEverywhere.receiver.waitFor(3);
    expect(new Set(conflicts.map((r) => `${r.body.data.dataset}:${brief(r)}`))).toEqual(new Set([`${ds}:conflictDetected:3`, `${ds}:conflictDetected:2`, `${other}:conflictDetected:3`]));

    // Everything settled: nothing more comes, every request was signed right.
    await waitUntil(async () => (await counts(t, all.id)) && JSON.stringify(await counts(t, all.id)) === JSON.stringify({ pending: 0, delivered: 18, failed: 0 }), 'every delivery settled');
    expect(all.receiver.unique()).toHaveLength(18);
    expect(conflictsEverywhere.receiver.unique()).toHaveLength(3);
    for (const r of [...all.receiver.requests, ...conflictsEverywhere.receiver.requests]) expect(r, r.verifyError).toMatchObject({ verified: true });

    // The bodies: type, commit time and the event's facts, named as in the subscriptions.
    const conflict = got.find((r) => r.body.type === 'conflictDetected' && r.body.data.entityId === a)!;
    expect(conflict.body).toEqual({ type: 'conflictDetected', timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), data: { dataset: ds, entityId: a, version: 3, conflict: 'SOFT', conflictingProperties: [] } });
    const rejection = got.find((r) => r.body.type === 'changeRejected')!;
    expect(rejection.body.data).toEqual({ dataset: ds, entityId: a, changeId: refused.changeId, deviceId: null, code: 'UNKNOWN_PROPERTY', message: 'a property is not declared by the dataset: colour' });
    // One event, one id, whichever webhook it goes to.
    expect(conflicts.find((r) => r.body.data.entityId === a)!.id).toBe(conflict.id);

    // The deliveries, newest first, paged.
    const page1 = await deliveries(t, all.id, { first: 10 });
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await deliveries(t, all.id, { first: 10, after: page1.pageInfo.endCursor });
    expect(page2.pageInfo.hasNextPage).toBe(false);
    const listed = [...page1.nodes, ...page2.nodes];
    const order = listed.map((x: { id: string }) => Number(x.id));
    expect(order).toEqual([...order].sort((p, q) => q - p));
    expect(new Set(listed.map((x: { eventId: string }) => x.eventId))).toEqual(new Set(got.map((r) => r.id)));
    expect(listed.find((x: { eventId: string }) => x.eventId === conflict.id)).toMatchObject({
      eventType: 'CONFLICT_DETECTED',
      dataset: ds,
      entityId: a,
      payload: conflict.body.data,
      status: 'DELIVERED',
      attempts: 1,
      lastStatusCode: 204,
      lastError: null,
      nextAttemptAt: null,
    });
    expect((await deliveries(t, all.id, { status: 'FAILED' })).nodes).toEqual([]);
  }, 120_000);

  it('a receiver that is down for a while gets everything once it is back, once each after dedupe, in order', async () => {
    const ds = await d.createDataset(['height']);
    const w = await hook(t, [ds], ['ENTITY_CHANGED']);
    await w.receiver.down();
    const ids = [await d.create(ds, 'P', { height: 1 }), await d.create(ds, 'Q', { height: 1 })];
    for (const id of ids) for (const v of [1, 2]) await d.update(ds, id, v, { height: v + 1 });
    // Tried and failed while it is down: retried later with a backoff, not dropped.
    await waitUntil(async () => {
      const nodes = (await deliveries(t, w.id)).nodes as { attempts: number }[];
      return nodes.length === 6 && nodes.some((x) => x.attempts >= 2);
    }, 'six deliveries and a second attempt', 10_000);
    const waiting = (await deliveries(t, w.id)).nodes;
    expect(waiting).toHaveLength(6);
    for (const x of waiting) expect(x).toMatchObject({ status: 'PENDING', lastStatusCode: null, deliveredAt: null });
    expect(waiting.find((x: { attempts: number }) => x.attempts >= 1).lastError).toMatch(/ECONNREFUSED/);
    expect(w.receiver.requests).toEqual([]);
    await w.receiver.up();
    const got = await w.receiver.waitFor(6);
    expect(byEntity(got)).toEqual(Object.fromEntries(ids.map((id) => [id, ['entityChanged:1', 'entityChanged:2', 'entityChanged:3']])));
    await waitUntil(async () => JSON.stringify(await counts(t, w.id)) === JSON.stringify({ pending: 0, delivered: 6, failed: 0 }), 'every delivery settled');
    expect(w.receiver.unique()).toHaveLength(6);
  });
});

describe('a rolled-back change sends nothing', () => {
  beforeAll(async () => {
    await t.database.db.execute(sql`create table doomed_webhook (change_id text not null)`);
    // Raises at commit (a deferred constraint trigger) for the original change log row of a listed change id.
    await t.database.db.execute(
      sql.raw(`create function fail_doomed_webhook() returns trigger language plpgsql as $$
        begin
          if new.original and exists (select 1 from doomed_webhook where change_id = new.change_id) then raise exception 'doomed change %', new.change_id; end if;
          return new;
        end $$`),
    );
    await t.database.db.execute(sql.raw(`create constraint trigger fail_doomed_webhook after insert on changes deferrable initially deferred for each row execute function fail_doomed_webhook()`));
  });

  it('an update whose transaction fails at commit: no outbox row, no request; the next change is sent', async () => {
    const ds = await d.createDataset(['height']);
    const w = await hook(t, [ds]);
    const doomedEntity = await d.create(ds, 'Doomed', { height: 1 });
    const goodEntity = await d.create(ds, 'Good', { height: 1 });
    await w.receiver.waitFor(2);
    const doomedId = randomUUID();
    await t.database.db.execute(sql`insert into doomed_webhook values (${doomedId})`);
    const [r] = await d.submit({ id: doomedId, dataset: ds, entityId: doomedEntity, action: 'UPDATE', baseVersion: 1, data: { height: 2 } });
    expect(r).toMatchObject({ outcome: 'REJECTED', error: { code: 'INTERNAL_ERROR' } });
    expect(await d.update(ds, goodEntity, 1, { height: 3 })).toMatchObject({ outcome: 'APPLIED', version: 2 });
    await w.receiver.waitFor(3);
    await waitUntil(async () => (await counts(t, w.id)) && (await counts(t, w.id) as { pending: number }).pending === 0, 'every delivery settled');
    expect(byEntity(w.receiver.unique())).toEqual({ [doomedEntity]: ['entityChanged:1'], [goodEntity]: ['entityChanged:1', 'entityChanged:2'] });
    const rows = await t.database.db.execute(sql`select count(*)::int as n from webhook_events where entity_key = ${doomedEntity}`);
    expect(((rows as unknown as { rows?: { n: number }[] }).rows ?? (rows as unknown as { n: number }[]))[0]!.n).toBe(1);
    await t.database.db.execute(sql`delete from doomed_webhook`);
  });
});

describe('an endpoint that fails, then hangs', () => {
  let app: TestApp;
  beforeAll(async () => {
    // A short retry time and timeout, so giving up is quick.
    app = await startTestApp({ flushIntervalSeconds: 0, webhooks: { pollMs: 100, timeoutMs: 400, retry: { retryForMs: 3000, backoffBaseMs: 200, maxBackoffMs: 500 } } });
  });
  afterAll(() => app?.close());

  it('answers 500, then times out: retried until the retry time is spent, then FAILED and shown; another endpoint meanwhile gets its event', async () => {
    const ad = domain(app);
    const ds = await ad.createDataset(['height']);
    const broken = await hook(app, [ds], ['ENTITY_CHANGED'], 'fail');
    const id = await ad.create(ds, 'Tree', { height: 1 });
    await waitUntil(async () => (await deliveries(app, broken.id)).nodes[0]?.lastStatusCode === 500, 'a 500 answer', 5000);
    expect((await deliveries(app, broken.id)).nodes[0]).toMatchObject({ status: 'PENDING', lastStatusCode: 500, lastError: 'HTTP 500: receiver broke', eventType: 'ENTITY_CHANGED', entityId: id });
    broken.receiver.mode = 'hang';
    // A healthy endpoint registered now gets the next event while the broken one hangs.
    const healthy = await hook(app, [ds], ['ENTITY_CHANGED']);
    await ad.update(ds, id, 1, { height: 2 });
    const [got] = await healthy.receiver.waitFor(1);
    expect(brief(got!)).toBe('entityChanged:2');
    await waitUntil(async () => (await deliveries(app, broken.id, { status: 'FAILED' })).nodes.length === 2, 'both deliveries to fail', 15_000);
    const failed = (await deliveries(app, broken.id)).nodes;
    for (const x of failed) expect(x).toMatchObject({ status: 'FAILED', lastStatusCode: null, lastError: 'no answer within 0.4 s', nextAttemptAt: null, deliveredAt: null });
    expect(failed[1].attempts).toBeGreaterThanOrEqual(3);
    expect(await counts(app, broken.id)).toEqual({ pending: 0, delivered: 0, failed: 2 });
    // Every attempt carried the same event id; nothing is tried after FAILED.
    const before = broken.receiver.requests.length;
    expect(new Set(broken.receiver.requests.map((r) => r.id)).size).toBe(2);
    await new Promise((r) => setTimeout(r, 600));
    expect(broken.receiver.requests.length).toBe(before);
  });
});

describe('where requests may go', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ flushIntervalSeconds: 0, webhooks: { pollMs: 100, timeoutMs: 1000, denyPrivate: true, retry: { retryForMs: 1500, backoffBaseMs: 200, maxBackoffMs: 400 } } });
  });
  afterAll(() => app?.close());

  it('WEBHOOK_DENY_PRIVATE: a receiver on loopback, by address or by a name that resolves to it, is refused at delivery and gets nothing', async () => {
    const ad = domain(app);
    const ds = await ad.createDataset(['height']);
    const byAddress = await hook(app, [ds], ['ENTITY_CHANGED']);
    // The same receiver by name: the name is resolved at each delivery and the address checked.
    const made = ok(await app.gql(CREATE, { url: byAddress.receiver.url.replace('127.0.0.1', 'localhost'), ds: [ds], ev: ['ENTITY_CHANGED'] })).createWebhook.data.webhook.id as string;
    await ad.create(ds, 'Tree', { height: 1 });
    for (const id of [byAddress.id, made]) {
      await waitUntil(async () => (await deliveries(app, id, { status: 'FAILED' })).nodes.length === 1, 'the delivery to fail', 10_000);
      expect((await deliveries(app, id)).nodes[0]).toMatchObject({ status: 'FAILED', lastStatusCode: null, lastError: expect.stringMatching(/^the receiver's address (127\.0\.0\.1|::1) is not public \(loopback, private, link-local…\), and WEBHOOK_DENY_PRIVATE refuses it$/) });
    }
    expect(byAddress.receiver.requests).toEqual([]);
  });

  it('a change whose events went to the outbox wakes the delivery at once, not at the next poll', async () => {
    // No poll within the test: only the wake after the commit can send the events.
    const quiet = await startTestApp({ flushIntervalSeconds: 0, webhooks: { ...FAST, pollMs: 600_000 } });
    try {
      const qd = domain(quiet);
      const qo = offline(quiet);
      const [ds, unwatched] = [await qd.createDataset(['height']), await qd.createDataset(['height'])];
      const w = await hook(quiet, [ds]);
      // A change no webhook wants first (nothing to wake for), then one by submitChange and one held by submitChanges.
      await qd.create(unwatched, 'Elsewhere', { height: 1 });
      const tree = await qd.create(ds, 'Tree', { height: 1 });
      expect(await qo.one(offlineRun(ds, tree, 1).update(2, { height: 3 }))).toMatchObject({ outcome: 'HELD' });
      expect((await w.receiver.waitFor(2, 10_000)).map(brief)).toEqual(['entityChanged:1', 'changeHeld:1']);
    } finally {
      await quiet.close();
    }
  });

  it('a redirect is not followed: the attempt fails with the status and where it pointed', async () => {
    const open = await startTestApp({ flushIntervalSeconds: 0, webhooks: { pollMs: 100, timeoutMs: 1000, retry: { retryForMs: 60_000, backoffBaseMs: 5000, maxBackoffMs: 5000 } } });
    try {
      const ad = domain(open);
      const ds = await ad.createDataset(['height']);
      const w = await hook(open, [ds], ['ENTITY_CHANGED'], 'redirect');
      await ad.create(ds, 'Tree', { height: 1 });
      await waitUntil(async () => (await deliveries(open, w.id)).nodes[0]?.attempts === 1 && (await deliveries(open, w.id)).nodes[0].lastStatusCode, 'the first attempt', 30_000);
      expect((await deliveries(open, w.id)).nodes[0]).toMatchObject({ status: 'PENDING', attempts: 1, lastStatusCode: 302, lastError: 'HTTP 302; redirects are not followed (to http://127.0.0.1:1/elsewhere)' });
      expect(w.receiver.requests).toHaveLength(1);
    } finally {
      await open.close();
    }
  });
});
