import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HARDENING, INTROSPECTION_DEPTH } from '../../src/server/hardening.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { socketClient, type SocketClient } from '../helpers/live.js';

/**
 * Issue 11 "Limits without holes": GraphQL Armor's depth limit skipped everything under
 * `__schema` (its ignoreIntrospection default), so a 44-level introspection query was answered
 * in full. Every document is now measured. The standard introspection query (what GraphiQL
 * and codegen tools send) is deeper than MAX_QUERY_DEPTH as Armor counts (every fragment spread
 * a level: 21), so selections under `__schema` have a limit of their own, exactly that depth.
 */

let t: TestApp;
let ws: SocketClient;
beforeAll(async () => {
  t = await startTestApp({ flushIntervalSeconds: 0 });
  ws = socketClient(t.url);
});
afterAll(async () => {
  await ws?.close();
  await t?.close();
});

/** `{ __schema { types { fields { type { ofType { … { name } } } } } } }`, `depth` levels in all (the leaf is one). */
function deepIntrospection(depth: number): string {
  let s = 'name';
  for (let i = 0; i < depth - 5; i++) s = `ofType { ${s} }`;
  return `{ __schema { types { fields { type { ${s} } } } } }`;
}

const codes = (errors: readonly { extensions?: Record<string, unknown> }[] | undefined) => (errors ?? []).map((e) => e.extensions?.code);

describe('the depth limit measures introspection too', () => {
  it('a 44-level introspection query is refused QUERY_TOO_DEEP, over HTTP and on the socket', async () => {
    const query = deepIntrospection(44);
    const res = await t.gql(query);
    expect(res.status).toBe(200);
    expect(res.data ?? null).toBeNull();
    expect(codes(res.errors)).toEqual(['QUERY_TOO_DEEP']);
    expect(res.errors![0]!.message).toBe(`query depth limit of ${INTROSPECTION_DEPTH} exceeded (found 44)`);
    const onSocket = await ws.request(query).then(
      () => null,
      (e: { extensions?: Record<string, unknown> }[]) => e,
    );
    expect(codes(onSocket ?? undefined)).toEqual(['QUERY_TOO_DEEP']);
  });

  it(`the standard introspection query (depth ${INTROSPECTION_DEPTH}) still passes, and one level more does not`, async () => {
    const standard = await t.gql(getIntrospectionQuery({ inputValueDeprecation: true }));
    expect(standard.errors).toBeUndefined();
    expect(standard.data.__schema.queryType).toMatchObject({ name: 'Query' });
    expect((await t.gql(deepIntrospection(INTROSPECTION_DEPTH))).errors).toBeUndefined();
    expect(codes((await t.gql(deepIntrospection(INTROSPECTION_DEPTH + 1))).errors)).toEqual(['QUERY_TOO_DEEP']);
  });

  it(`outside __schema the limit stays MAX_QUERY_DEPTH (${DEFAULT_HARDENING.maxDepth}), also beside an introspection field`, async () => {
    // entity, then versions / entity alternating, then the leaf: maxDepth + 1 levels.
    let deep = 'label';
    for (let i = 0; i < DEFAULT_HARDENING.maxDepth - 1; i++) deep = i % 2 === 0 ? `versions(limit: 1) { ${deep} }` : `entity { ${deep} }`;
    const query = `{ __schema { queryType { name } } entity(id: "7f3c9e2a-4b1d-4e8f-a6c5-2d9b0e1f3a77") { ${deep} } }`;
    const res = await t.gql(query);
    expect(codes(res.errors)).toEqual(['QUERY_TOO_DEEP']);
    expect(res.errors![0]!.message).toBe(`query depth limit of ${DEFAULT_HARDENING.maxDepth} exceeded (found ${DEFAULT_HARDENING.maxDepth + 1})`);
  });
});
