import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/sync/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { domain } from '../helpers/domain.js';
import { socketClient, waitUntil, type SocketClient } from '../helpers/live.js';

/**
 * Issue 17 item 7: one socket may not multiply every change. Subscriptions are bounded per socket
 * and per token, and a subscription is priced by what each event will cost when it is made, over
 * a real graphql-ws socket.
 */
let t: TestApp;
let ds: string;
let collector: string;
const sockets: SocketClient[] = [];
const open = (token: string) => {
  const s = socketClient(t.url, { token });
  sockets.push(s);
  return s;
};
const CHANGED = 'subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version } }';
const codes = (errors: unknown[]) => errors.flat().map((e) => (e as { extensions?: { code?: string } }).extensions?.code);

beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0, auth: { anonymousRole: null }, subscriptions: { perSocket: 5, perToken: 8 } });
  const admin = (await createToken(t.database.db, { name: 'admin', role: 'admin' })).secret;
  ds = await domain({ ...t, gql: (q, v) => t.gqlAs(admin, q, v) }).createDataset(['height']);
  collector = (await createToken(t.database.db, { name: 'tablet', role: 'collector', datasets: [ds] })).secret;
});
afterAll(async () => {
  for (const s of sockets) await s.close();
  await t?.close();
});

describe('subscriptions per socket and per token', () => {
  it('the sixth on a socket of five is refused TOO_MANY_SUBSCRIPTIONS; the others stay; ending one makes room', async () => {
    const socket = open(collector);
    const five = Array.from({ length: 5 }, () => socket.subscribe(CHANGED, { ds }));
    const sixth = socket.subscribe(CHANGED, { ds });
    await waitUntil(() => sixth.errors.length > 0, 'the sixth refused');
    expect(codes(sixth.errors)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
    expect(JSON.stringify(sixth.errors)).toMatch(/this socket holds 5 subscriptions/);
    expect(five.every((s) => s.errors.length === 0 && !s.completed)).toBe(true);
    expect(socket.closed.code).toBeUndefined();
    five[0]!.close();
    const again = socket.subscribe(CHANGED, { ds });
    // Room again: an event reaches it.
    const entityId = crypto.randomUUID();
    await waitUntil(async () => {
      await t.gqlAs(collector, `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { __typename } }`, {
        c: [{ id: crypto.randomUUID(), dataset: ds, entityId, action: 'CREATE', label: 'Oak', data: { height: 1 } }],
      });
      return again.values.length > 0 || again.errors.length > 0;
    }, 'an event on the new one');
    expect(again.errors).toEqual([]);
    for (const s of [...five, again]) s.close();
  });

  it('over every socket of one token: the ninth is refused, on another socket too', async () => {
    const a = open(collector);
    const b = open(collector);
    const held = [...Array.from({ length: 5 }, () => a.subscribe(CHANGED, { ds })), ...Array.from({ length: 3 }, () => b.subscribe(CHANGED, { ds }))];
    await new Promise((r) => setTimeout(r, 300));
    const ninth = b.subscribe(CHANGED, { ds });
    await waitUntil(() => ninth.errors.length > 0, 'the ninth refused');
    expect(codes(ninth.errors)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
    expect(JSON.stringify(ninth.errors)).toMatch(/this API token holds 8 subscriptions/);
    for (const s of held) s.close();
  });

  it('a subscription is priced by what each event will cost: a history of 1,000 under each event is refused when made', async () => {
    const socket = open(collector);
    const costly = socket.subscribe(`subscription($ds: String!) { entityChanged(dataset: $ds) { entity { versions(limit: 1000) { version data changed entity { versions(limit: 1000) { version } } } } } }`, { ds });
    await waitUntil(() => costly.errors.length > 0, 'refused when made');
    expect(codes(costly.errors)).toEqual(['QUERY_TOO_COMPLEX']);
    const cheap = socket.subscribe(CHANGED, { ds });
    await new Promise((r) => setTimeout(r, 200));
    expect(cheap.errors).toEqual([]);
    cheap.close();
  });
});
