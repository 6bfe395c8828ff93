import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, ok } from '../helpers/domain.js';
import { createToken } from '../../src/sync/tokens.js';

/**
 * Issue 17 item 2: heldChanges, conflicts and apiTokens are pages (first/after, last/before) like
 * the other lists, in a stable order, so one request's work is bounded by its page size.
 */
const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);

const HELD = `query($ds: String!, $first: Int, $after: String, $last: Int, $before: String) {
  heldChanges(dataset: $ds, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { changeId } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } }`;
const CONFLICTS = `query($ds: String!, $first: Int, $after: String) {
  conflicts(dataset: $ds, first: $first, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }`;

/** `n` offline runs' second steps, each held waiting for its first: oldest held first. */
async function holdMany(ds: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  // Sent in a few batches: many share a millisecond, which the order must still keep apart.
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, () => ({
      id: randomUUID(),
      dataset: ds,
      entityId: randomUUID(),
      action: 'UPDATE' as const,
      branchId: randomUUID(),
      trunkVersion: null,
      baseVersion: 2,
      data: { n: 1 },
    }));
    const r = ok(await t.gql(`mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { changeId outcome } } } }`, { c: batch }));
    expect(r.submitChanges.data.map((x: { outcome: string }) => x.outcome)).toEqual(batch.map(() => 'HELD'));
    ids.push(...batch.map((c) => c.id));
  }
  return ids;
}

describe('heldChanges is paged', () => {
  it('default page of 50, oldest first; every change once over the pages, backwards too', async () => {
    const ds = await d.createDataset(['n']);
    await holdMany(ds, 120);
    const all = ok(await t.gql(`query($ds: String!) { heldChanges(dataset: $ds, first: 500) { nodes { changeId heldSince } } }`, { ds })).heldChanges.nodes as {
      changeId: string;
      heldSince: string;
    }[];
    expect(all).toHaveLength(120);
    // Oldest first (a batch's are held a microsecond apart, in input order), each once.
    expect(all.map((h) => h.heldSince)).toEqual(all.map((h) => h.heldSince).sort());
    expect(new Set(all.map((h) => h.changeId)).size).toBe(120);

    const first = ok(await t.gql(HELD, { ds })).heldChanges;
    expect(first.edges).toHaveLength(50);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const seen: string[] = first.edges.map((e: { node: { changeId: string } }) => e.node.changeId);
    let after = first.pageInfo.endCursor;
    for (;;) {
      const page = ok(await t.gql(HELD, { ds, first: 50, after })).heldChanges;
      seen.push(...page.edges.map((e: { node: { changeId: string } }) => e.node.changeId));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(all.map((h) => h.changeId));
    // Backwards from the end: the newest 20.
    const last = ok(await t.gql(HELD, { ds, last: 20 })).heldChanges;
    expect(last.edges.map((e: { node: { changeId: string } }) => e.node.changeId)).toEqual(all.slice(-20).map((h) => h.changeId));
  });

  it('a tampered cursor is INVALID_CURSOR', async () => {
    const ds = await d.createDataset(['n']);
    for (const cursor of ['nonsense', Buffer.from('DC:T:["D:1","S:x"]').toString('base64'), Buffer.from('DC:T:["S:2026-12-06 22:59:01.123456+00 or 1=1","S:x"]').toString('base64'), Buffer.from("DC:T:[\"S:2026-01-01T00:00:00.000000Z'\",\"S:x\"]").toString('base64')]) {
      const res = await t.gql(HELD, { ds, after: cursor });
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['INVALID_CURSOR']);
    }
  });
});

describe('conflicts is paged', () => {
  it('pages of entities in conflict, each once, by id', async () => {
    const ds = await d.createDataset(['n']);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = await d.create(ds, `e${i}`, { n: 0 });
      await d.update(ds, id, 1, { n: 1 });
      const r = await d.update(ds, id, 1, { n: 2 });
      expect(r.conflict).toBe('HARD');
      ids.push(id);
    }
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } = ok(await t.gql(CONFLICTS, { ds, first: 3, after })).conflicts;
      expect(page.nodes.length).toBeLessThanOrEqual(3);
      seen.push(...page.nodes.map((n) => n.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual([...ids].sort());
    const res = await t.gql(CONFLICTS, { ds, after: 'bad' });
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['INVALID_CURSOR']);
  });
});

describe('apiTokens is paged', () => {
  const TOKENS = `query($first: Int, $after: String, $last: Int, $before: String) {
    apiTokens(first: $first, after: $after, last: $last, before: $before) { edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage endCursor } } }`;
  type Page = { edges: { cursor: string; node: { id: string; name: string } }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string } };

  it('default page of 50, at most 500, oldest first; every token once over the pages', async () => {
    // Made back to back, many in one millisecond: the order must still be the order they were made.
    const tag = randomUUID().slice(0, 8);
    const made: string[] = [];
    for (let i = 0; i < 120; i++) made.push((await createToken(t.database.db, { name: `${tag}-${i}`, role: 'collector' })).token.id);

    const first: Page = ok(await t.gql(TOKENS, {})).apiTokens;
    expect(first.edges).toHaveLength(50);
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const seen = first.edges.map((e) => e.node.id);
    for (let after = first.pageInfo.endCursor; ; ) {
      const page: Page = ok(await t.gql(TOKENS, { first: 50, after })).apiTokens;
      expect(page.edges.length).toBeLessThanOrEqual(50);
      seen.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    // Other tests may make tokens meanwhile (a shared database): ours come in the order made.
    expect(seen.filter((id) => made.includes(id))).toEqual(made);
    // The newest, backwards; and no page beyond the maximum.
    expect(ok(await t.gql(TOKENS, { last: 3 })).apiTokens.edges.map((e: Page['edges'][number]) => e.node.id)).toEqual(seen.slice(-3));
    const widest: Page = ok(await t.gql(TOKENS, { first: 100_000 })).apiTokens;
    expect(widest.edges).toHaveLength(Math.min(500, seen.length));
  });

  it('a tampered cursor is INVALID_CURSOR', async () => {
    const id = randomUUID();
    const bad = ['nonsense', 'DC:N:1', `DC:T:["N:1 or 1=1","S:${id}"]`, `DC:T:["N:1","S:x"]`, `DC:T:["S:1","S:${id}"]`, `DC:T:["N:99999999999999999","S:${id}"]`, `DC:T:["N:1","S:${id}","N:2"]`];
    for (const cursor of bad.map((c) => Buffer.from(c).toString('base64'))) {
      for (const arg of ['after', 'before']) {
        const res = await t.gql(TOKENS, { [arg]: cursor });
        expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['INVALID_CURSOR']);
      }
    }
  });
});
