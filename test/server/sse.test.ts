import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, type Domain, type Offline } from '../helpers/domain.js';
import { CHANGED_SUB, CONFLICT_SUB, FLUSHED_SUB, HELD_SUB, sseSubscribe, trackSubscriptions, waitUntil, type Stream, type Tracker } from '../helpers/live.js';

/**
 * Subscriptions over Server-Sent Events, for clients whose sockets are blocked (DESIGN "Transport").
 * The client is a plain fetch with `accept: text/event-stream`; frames are parsed by hand.
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const o = offline(t);
let tracker: Tracker;
const open: Stream[] = [];
beforeAll(async () => {
  tracker = trackSubscriptions(t.app.bus);
});
afterAll(async () => {
  for (const s of open) s.close();
});

const PROPS = ['height', 'species', 'note', 'age'];

/** Opens an SSE subscription, checks the response, and waits until the server holds it. */
async function live<T = any>(query: string, ds: string, entityId?: string) {
  const before = tracker.opened();
  const s = sseSubscribe<T>(t.url, query, { ds, ...(entityId ? { e: entityId } : {}) });
  open.push(s);
  const res = await s.opened;
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  await waitUntil(() => tracker.opened() > before, 'the SSE subscription to be live', 3000);
  return s;
}

describe('conflictDetected over SSE', () => {
  it('a HARD conflict arrives once as an `event: next` frame with type, properties, version and the reloaded entity', async () => {
    const ds = await d.createDataset(PROPS);
    const conflicts = await live(CONFLICT_SUB, ds);
    const id = await d.create(ds, 'Oak', { height: 1, species: 'oak' });
    await d.update(ds, id, 1, { height: 5 });
    expect(await d.update(ds, id, 1, { height: 7, species: 'elm' })).toMatchObject({ version: 3, conflict: 'HARD', conflictingProperties: ['height'] });
    // Sentinel: a SOFT conflict of another entity, published after the HARD one.
    const other = await d.create(ds, 'Ash', { height: 1 });
    await d.update(ds, other, 1, { height: 2 });
    await d.update(ds, other, 1, { note: 'n' });

    expect(await conflicts.take(2)).toEqual([
      {
        dataset: ds,
        entityId: id,
        version: 3,
        type: 'HARD',
        conflictingProperties: ['height'],
        entity: { id, label: 'Oak', version: 3, conflict: 'HARD', data: { height: 7, species: 'elm' } },
      },
      { dataset: ds, entityId: other, version: 3, type: 'SOFT', conflictingProperties: [], entity: { id: other, label: 'Ash', version: 3, conflict: 'SOFT', data: { height: 2, note: 'n' } } },
    ]);
    expect(conflicts.frames.map((f) => f.event)).toEqual(['next', 'next']);
    expect(conflicts.errors).toEqual([]);
  });

  it('filters by dataset and entityId', async () => {
    const [a, b] = [await d.createDataset(PROPS), await d.createDataset(PROPS)];
    const target = randomUUID();
    const onTarget = await live(CONFLICT_SUB, a, target);
    const onB = await live(CONFLICT_SUB, b);
    for (const [ds, id] of [[b, randomUUID()], [a, randomUUID()], [a, target]] as const) {
      await d.create(ds, 'E', { height: 1 }, id);
      await d.update(ds, id, 1, { height: 2 });
      await d.update(ds, id, 1, { height: 3 });
    }
    expect((await onTarget.take(1)).map((e) => [e.dataset, e.entityId, e.type])).toEqual([[a, target, 'HARD']]);
    expect((await onB.take(1)).map((e) => e.dataset)).toEqual([b]);
    expect(onTarget.values).toHaveLength(1);
  });
});

describe('the backlog over SSE', () => {
  it('changeHeld then backlogFlushed RELEASED with the released ids and versions in order', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak', { species: 'oak' });
    const held = await live(HELD_SUB, ds);
    const flushed = await live(FLUSHED_SUB, ds);
    const run = offlineRun(ds, id, 1);
    const [c1, c2, c3] = [run.update(1, { height: 1 }), run.update(2, { height: 2 }), run.update(3, { note: 'three' })];
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD', waitsFor: 1 });
    expect(await o.one(c3)).toMatchObject({ outcome: 'HELD', waitsFor: 2 });
    expect(await held.take(2)).toEqual([
      { dataset: ds, entityId: id, changeId: c2.id, branchId: run.branchId, waitsFor: 1, heldChange: { changeId: c2.id, baseVersion: 2, waitsFor: 1 } },
      { dataset: ds, entityId: id, changeId: c3.id, branchId: run.branchId, waitsFor: 2, heldChange: { changeId: c3.id, baseVersion: 3, waitsFor: 2 } },
    ]);
    expect(await o.one(c1)).toMatchObject({ outcome: 'APPLIED', version: 2 });
    expect(await flushed.take(1)).toEqual([
      { dataset: ds, entityId: id, reason: 'RELEASED', changes: [{ changeId: c2.id, version: 3 }, { changeId: c3.id, version: 4 }], entity: { version: 4, data: { species: 'oak', height: 2, note: 'three' } } },
    ]);
    expect(Math.max(...held.stamps)).toBeLessThan(flushed.stamps[0]!);
  });

  it('a forced flush: backlogFlushed FORCED', async () => {
    const ds = await d.createDataset(PROPS);
    const id = await d.create(ds, 'Oak');
    const flushed = await live(FLUSHED_SUB, ds, id);
    const c2 = offlineRun(ds, id, 1).update(2, { height: 2 });
    expect(await o.one(c2)).toMatchObject({ outcome: 'HELD' });
    expect((await o.flush(0)).filter((r) => r.entityId === id).map((r) => [r.changeId, r.version])).toEqual([[c2.id, 2]]);
    expect(await flushed.take(1)).toEqual([{ dataset: ds, entityId: id, reason: 'FORCED', changes: [{ changeId: c2.id, version: 2 }], entity: { version: 2, data: { height: 2 } } }]);
  });
});

describe('the SSE transport', () => {
  it('entityChanged over a GET request (what a browser EventSource sends)', async () => {
    const ds = await d.createDataset(PROPS);
    const before = tracker.opened();
    const url = new URL(t.url);
    url.searchParams.set('query', CHANGED_SUB);
    url.searchParams.set('variables', JSON.stringify({ ds }));
    const abort = new AbortController();
    try {
      const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      await waitUntil(() => tracker.opened() > before, 'the GET subscription to be live');
      const id = await d.create(ds, 'Oak');
      const reader = res.body!.getReader();
      let text = '';
      await waitUntil(async () => {
        const { value } = await reader.read();
        text += new TextDecoder().decode(value);
        return text.includes('event: next');
      }, 'an event: next frame');
      const frame = /event: next\ndata: (.*)\n\n/.exec(text);
      expect(JSON.parse(frame![1]!)).toEqual({ data: { entityChanged: { dataset: ds, entityId: id, version: 1, entity: { version: 1 } } } });
    } finally {
      abort.abort();
    }
  });

  it('a query over SSE is one `next` frame then `complete`', async () => {
    const s = sseSubscribe(t.url, '{ datasets { name } }');
    await waitUntil(() => s.completed, 'the stream to complete');
    expect(s.frames.map((f) => f.event)).toEqual(['next', 'complete']);
    expect(s.values).toEqual([expect.any(Array)]);
  });

  it('closing the stream ends the subscription on the server', async () => {
    const ds = await d.createDataset(PROPS);
    const s = await live(CHANGED_SUB, ds);
    const baseline = tracker.active('entityChanged');
    await d.create(ds, 'Oak');
    await s.take(1);
    s.close();
    await waitUntil(() => tracker.active('entityChanged') === baseline - 1, 'the server to end the closed stream\'s subscription');
  });
});
