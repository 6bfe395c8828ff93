import { randomBytes, randomUUID } from 'node:crypto';
import { sql as dsql } from 'drizzle-orm';
import { expect } from 'vitest';
import { PULL_HORIZON } from '../../src/sync/changes-since.js';
import type { GqlResponse, TestApp } from './app.js';

/** Domain factories over real HTTP, so scenarios read as steps. Every call checks the envelope. */

export type Outcome = 'APPLIED' | 'HELD' | 'DUPLICATE' | 'REJECTED';
export type Conflict = 'SOFT' | 'HARD' | null;

export interface ChangeInput {
  id?: string;
  deviceId?: string | null;
  dataset: string;
  entityId?: string | null;
  action: 'CREATE' | 'UPDATE' | 'DELETE';
  label?: string | null;
  data?: unknown;
  baseVersion?: number | null;
  trunkVersion?: number | null;
  branchId?: string | null;
}

export interface ChangeResult {
  changeId: string;
  outcome: Outcome;
  originalOutcome: Outcome | null;
  entityId: string | null;
  version: number | null;
  conflict: Conflict;
  conflictingProperties: string[];
  error: { code: string; message: string } | null;
}

export interface VersionRow {
  version: number;
  appliedOn: number | null;
  baseVersion: number | null;
  action: string;
  label: string;
  data: Record<string, unknown>;
  changed: Record<string, unknown>;
  deleted: boolean;
  conflict: Conflict;
  conflictingProperties: string[];
  resolved: boolean;
  source: string;
  changeId: string;
}

export interface EntityRow {
  id: string;
  label: string;
  data: Record<string, unknown>;
  version: number;
  conflict: Conflict;
  deleted: boolean;
  dataset: { name: string };
  versions: VersionRow[];
}

export const RESULT = 'changeId outcome originalOutcome entityId version conflict conflictingProperties error { code message }';
export const VERSION = 'version appliedOn baseVersion action label data changed deleted conflict conflictingProperties resolved source changeId';
export const ENTITY = `id label data version conflict deleted dataset { name } versions { ${VERSION} }`;
const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
  __typename ... on MutationSubmitChangesSuccess { data { ${RESULT} } } ... on DomainError { code message } } }`;

/** A name no other test uses. */
export const uniqueName = (prefix = 'ds'): string => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Asserts a 200 with data and no GraphQL errors, and returns the data. */
export function ok<T = any>(res: GqlResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  expect(res.status).toBe(200);
  return res.data as T;
}

/** Asserts the server did not fail unexpectedly: no 5xx, no masked INTERNAL_SERVER_ERROR. */
export function noInternalError(res: GqlResponse): void {
  expect(res.status).toBeLessThan(500);
  const internal = (res.errors ?? []).filter((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR');
  expect(internal, JSON.stringify(res.errors)).toEqual([]);
}

/** POSTs a body exactly as given (for JSON that JSON.stringify cannot produce). */
export async function postRaw(t: TestApp, body: string): Promise<GqlResponse> {
  const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  let json: Omit<GqlResponse, 'status'> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = { errors: [{ message: text }] };
  }
  return { ...json, status: res.status };
}

export function domain(t: TestApp) {
  async function submitRaw(changes: ChangeInput[]) {
    const full = changes.map((c) => ({ id: randomUUID(), ...c }));
    return ok(await t.gql(SUBMIT, { c: full })).submitChanges;
  }

  /** Submits a batch and returns one result per change, in input order. */
  async function submit(...changes: ChangeInput[]): Promise<ChangeResult[]> {
    const r = await submitRaw(changes);
    expect(r.__typename, JSON.stringify(r)).toBe('MutationSubmitChangesSuccess');
    expect(r.data).toHaveLength(changes.length);
    return r.data;
  }

  async function one(change: ChangeInput): Promise<ChangeResult> {
    return (await submit(change))[0]!;
  }

  async function createDataset(properties: string[], name = uniqueName()): Promise<string> {
    const res = ok(
      await t.gql(
        `mutation($n: String!, $p: [String!]!) { createDataset(name: $n, properties: $p) {
          __typename ... on MutationCreateDatasetSuccess { data { name properties } } ... on DomainError { code message } } }`,
        { n: name, p: properties },
      ),
    );
    expect(res.createDataset).toEqual({ __typename: 'MutationCreateDatasetSuccess', data: { name, properties } });
    return name;
  }

  /** Creates an entity and asserts it applied as version 1. */
  async function create(dataset: string, label: string, data: Record<string, unknown> = {}, entityId = randomUUID()): Promise<string> {
    const r = await one({ dataset, entityId, action: 'CREATE', label, data });
    expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'APPLIED', version: 1, entityId, conflict: null, error: null });
    return entityId;
  }

  function update(dataset: string, entityId: string, baseVersion: number, data: Record<string, unknown>, extra: Partial<ChangeInput> = {}) {
    return one({ dataset, entityId, action: 'UPDATE', baseVersion, data, ...extra });
  }

  function remove(dataset: string, entityId: string, baseVersion: number, extra: Partial<ChangeInput> = {}) {
    return one({ dataset, entityId, action: 'DELETE', baseVersion, ...extra });
  }

  async function entity(id: string): Promise<EntityRow | null> {
    return ok(await t.gql(`query($id: ID!) { entity(id: $id) { ${ENTITY} } }`, { id })).entity;
  }

  async function change(id: string) {
    return ok(
      await t.gql(`query($id: String!) { change(id: $id) { id deviceId dataset entityId payload outcome errorCode errorMessage version } }`, { id }),
    ).change;
  }

  /** Asserts a rejection with `code`, and that the change log recorded it as such. */
  async function expectRejected(r: ChangeResult, code: string): Promise<void> {
    expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'REJECTED', version: null, conflict: null, error: { code } });
    expect(r.error!.message.length).toBeGreaterThan(0);
    const recorded = await change(r.changeId);
    expect(recorded).toMatchObject({ id: r.changeId, outcome: 'REJECTED', errorCode: code, version: null });
  }

  return { submitRaw, submit, one, createDataset, create, update, remove, entity, change, expectRejected };
}

export type Domain = ReturnType<typeof domain>;

/* ---- Offline runs (branches), the held-change backlog and the forced flush ---- */

export interface RunResult extends ChangeResult {
  waitsFor: number | null;
  released: (ChangeResult & { waitsFor: number | null })[];
}

export interface Diff {
  property: string;
  old: unknown;
  new: unknown;
}

export interface RunVersionRow extends VersionRow {
  branchId: string | null;
  trunkVersion: number | null;
  branchBaseVersion: number | null;
  deviceId: string | null;
  baseDiff: Diff[] | null;
  serverDiff: Diff[];
  authorViewUnavailable: string | null;
}

export interface BranchRow {
  id: string;
  entityId: string;
  trunkVersion: number | null;
  changes: { position: number; changeId: string; state: 'APPLIED' | 'HELD'; version: number | null; heldSince: string | null }[];
  missing: { from: number; to: number }[];
}

export interface HeldRow {
  changeId: string;
  entityId: string;
  dataset: string;
  deviceId: string | null;
  branchId: string;
  trunkVersion: number | null;
  baseVersion: number;
  waitsFor: number;
  heldSince: string;
  forceAfter: string;
}

export interface RunEntityRow extends Omit<EntityRow, 'versions'> {
  versions: RunVersionRow[];
  branches: BranchRow[];
}

export const RUN_RESULT = `${RESULT} waitsFor released { ${RESULT} waitsFor }`;
export const RUN_VERSION = `${VERSION} branchId trunkVersion branchBaseVersion deviceId authorViewUnavailable baseDiff { property old new } serverDiff { property old new }`;
export const BRANCH = 'id entityId trunkVersion missing { from to } changes { position changeId state version heldSince }';
export const HELD = 'changeId entityId dataset deviceId branchId trunkVersion baseVersion waitsFor heldSince forceAfter';
const RUN_SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
  __typename ... on MutationSubmitChangesSuccess { data { ${RUN_RESULT} } } ... on DomainError { code message } } }`;

/**
 * One offline run of one client on one entity, as a client library would number it: a run that
 * starts on server version `trunk` sends trunkVersion `trunk` and baseVersion trunk, trunk+1, …;
 * a run that starts with an offline create (`trunk` null) sends the create without either and
 * its updates with trunkVersion null and baseVersion 1, 2, …. Each change gets its own id once,
 * so sending one twice is a resend.
 */
export function offlineRun(dataset: string, entityId: string, trunk: number | null, extra: Partial<ChangeInput> = {}) {
  const branchId = randomUUID();
  const first = trunk ?? 1;
  return {
    branchId,
    entityId,
    /** The offline create that begins a run with trunk null. */
    create: (label: string | null, data: Record<string, unknown> = {}): ChangeInput & { id: string } => ({
      id: randomUUID(),
      dataset,
      entityId,
      action: 'CREATE',
      label,
      data,
      branchId,
      trunkVersion: null,
      ...extra,
    }),
    /** The n-th update of the run (n = 1, 2, …): baseVersion trunk + n - 1 (or n after an offline create). */
    update: (n: number, data: Record<string, unknown>, more: Partial<ChangeInput> = {}): ChangeInput & { id: string } => ({
      id: randomUUID(),
      dataset,
      entityId,
      action: 'UPDATE',
      data,
      branchId,
      trunkVersion: trunk,
      baseVersion: first + n - 1,
      ...extra,
      ...more,
    }),
  };
}

export function offline(t: TestApp) {
  /** Submits a batch, asserts the success envelope, returns one result (with waitsFor and released) per change. */
  async function submit(...changes: ChangeInput[]): Promise<RunResult[]> {
    const full = changes.map((c) => ({ id: randomUUID(), ...c }));
    const r = ok(await t.gql(RUN_SUBMIT, { c: full })).submitChanges;
    expect(r.__typename, JSON.stringify(r)).toBe('MutationSubmitChangesSuccess');
    expect(r.data).toHaveLength(changes.length);
    return r.data;
  }

  async function one(change: ChangeInput): Promise<RunResult> {
    return (await submit(change))[0]!;
  }

  /**
   * flushBacklog(olderThanSeconds): each forced change with the successors it released. The answer
   * lists the first 500 forced; more (another test's backlog in a shared database) fails here.
   */
  async function flush(olderThanSeconds: number | null = 0): Promise<RunResult[]> {
    const r = ok(await t.gql(`mutation($s: Int) { flushBacklog(olderThanSeconds: $s) { forced truncated changes { ${RUN_RESULT} } } }`, { s: olderThanSeconds })).flushBacklog;
    expect(r.truncated, `the flush forced ${r.forced} held changes, more than its answer lists`).toBe(false);
    return r.changes;
  }

  async function held(filter: { dataset?: string; entityId?: string; branchId?: string } = {}): Promise<HeldRow[]> {
    return ok(await t.gql(`query($ds: String, $e: ID, $b: ID) { heldChanges(dataset: $ds, entityId: $e, branchId: $b, first: 500) { nodes { ${HELD} } } }`, { ds: filter.dataset, e: filter.entityId, b: filter.branchId }))
      .heldChanges.nodes;
  }

  async function branch(id: string): Promise<BranchRow | null> {
    return ok(await t.gql(`query($id: ID!) { branch(id: $id) { ${BRANCH} } }`, { id })).branch;
  }

  /** The entity with every run field of its versions, and its branches. */
  async function entity(id: string): Promise<RunEntityRow | null> {
    return ok(await t.gql(`query($id: ID!) { entity(id: $id) { ${ENTITY.replace(`versions { ${VERSION} }`, `versions { ${RUN_VERSION} }`)} branches { ${BRANCH} } } }`, { id })).entity;
  }

  /** Compact history: [version, source, conflict, data] per version, for whole-history assertions. */
  async function history(id: string): Promise<[number, string, Conflict, Record<string, unknown>][]> {
    const e = await entity(id);
    expect(e, `entity ${id}`).not.toBeNull();
    return e!.versions.map((v) => [v.version, v.source, v.conflict, v.data]);
  }

  return { submit, one, flush, held, branch, entity, history };
}

export type Offline = ReturnType<typeof offline>;

/* ---- Operations, client-local ids and pulling changes since a cursor (issue 5) ---- */

export type OperationKind = 'SET' | 'UNSET' | 'LIST_ADD' | 'LIST_REMOVE' | 'INCREMENT' | 'SET_LABEL';

export interface OperationInputRow {
  op: OperationKind;
  property?: string | null;
  value?: unknown;
  index?: number | null;
  by?: number | null;
}

/** A change that may carry operations and a client-local id. */
export interface SyncChangeInput extends ChangeInput {
  localId?: string | null;
  operations?: OperationInputRow[] | null;
}

export interface SyncResult extends RunResult {
  localId: string | null;
}

/** An operation as EntityVersion.operations reports it. */
export interface OperationRow {
  op: OperationKind;
  property: string | null;
  value: unknown;
  index: number | null;
  by: number | null;
}

export interface SyncVersionRow extends VersionRow {
  operations: OperationRow[];
  deviceId: string | null;
  branchId: string | null;
}

export interface PulledVersion {
  version: number;
  changeId: string;
  action: string;
  label: string;
  data: Record<string, unknown>;
  operations: OperationRow[];
  conflict: Conflict;
  entity: { id: string };
}

export interface ChangesPageRow<V = PulledVersion> {
  versions: V[];
  cursor: string;
  hasMore: boolean;
  localIds: { localId: string; entityId: string }[];
}

export type PullResponse<V = PulledVersion> =
  | { __typename: 'QueryChangesSinceSuccess'; data: ChangesPageRow<V> }
  | { __typename: 'DomainError'; code: string; message: string };

export const OPERATION = 'op property value index by';
export const SYNC_RESULT = `${RESULT} localId waitsFor released { ${RESULT} localId waitsFor }`;
export const SYNC_VERSION = `${VERSION} deviceId branchId operations { ${OPERATION} }`;
export const PULLED_VERSION = `version changeId action label data conflict operations { ${OPERATION} } entity { id }`;
const SYNC_SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
  __typename ... on MutationSubmitChangesSuccess { data { ${SYNC_RESULT} } } ... on DomainError { code message } } }`;
const pullQuery = (fields: string) => `query($ds: String!, $c: String, $l: Int, $d: String) {
  changesSince(dataset: $ds, cursor: $c, limit: $l, deviceId: $d) {
    __typename ... on QueryChangesSinceSuccess { data { cursor hasMore localIds { localId entityId } versions { ${fields} } } } ... on DomainError { code message } } }`;

export function sync(t: TestApp) {
  /** Submits a batch (operations, local ids allowed), asserts the success envelope, returns one result per change. */
  async function submit(...changes: SyncChangeInput[]): Promise<SyncResult[]> {
    const full = changes.map((c) => ({ id: randomUUID(), ...c }));
    const r = ok(await t.gql(SYNC_SUBMIT, { c: full })).submitChanges;
    expect(r.__typename, JSON.stringify(r)).toBe('MutationSubmitChangesSuccess');
    expect(r.data).toHaveLength(changes.length);
    return r.data;
  }

  async function one(change: SyncChangeInput): Promise<SyncResult> {
    return (await submit(change))[0]!;
  }

  /** The entity's history with each version's operations. */
  async function versions(entityId: string): Promise<SyncVersionRow[]> {
    const e = ok(await t.gql(`query($id: ID!) { entity(id: $id) { versions { ${SYNC_VERSION} } } }`, { id: entityId })).entity;
    expect(e, `entity ${entityId}`).not.toBeNull();
    return e.versions;
  }

  /**
   * Pulls hand out a version once every transaction of this database older than it has ended
   * (PULL_HORIZON). A test that asserts "everything written so far" waits for that first, bounded.
   */
  async function pullable(): Promise<void> {
    const until = Date.now() + 30_000;
    for (;;) {
      const res = (await t.database.db.execute(
        dsql`select coalesce(${dsql.raw(PULL_HORIZON)} > (select max(txid) from entity_versions), true) as ok`,
      )) as unknown as { rows?: { ok: boolean }[] } & { ok: boolean }[];
      const row = res.rows ? res.rows[0] : res[0];
      if (row?.ok) return;
      if (Date.now() > until) throw new Error('a transaction older than the test versions is still running on the server');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** changesSince as the API answers it: a page or a DomainError. */
  async function pullRaw<V = PulledVersion>(dataset: string, opts: { cursor?: string | null; limit?: number | null; deviceId?: string | null } = {}, fields = PULLED_VERSION): Promise<PullResponse<V>> {
    return ok(await t.gql(pullQuery(fields), { ds: dataset, c: opts.cursor, l: opts.limit, d: opts.deviceId })).changesSince;
  }

  /** changesSince, asserting a page; by default once everything written so far is pullable. */
  async function pull<V = PulledVersion>(
    dataset: string,
    opts: { cursor?: string | null; limit?: number | null; deviceId?: string | null } = {},
    fields = PULLED_VERSION,
    settle = true,
  ): Promise<ChangesPageRow<V>> {
    if (settle) await pullable();
    const r = await pullRaw<V>(dataset, opts, fields);
    expect(r.__typename, JSON.stringify(r).slice(0, 500)).toBe('QueryChangesSinceSuccess');
    return (r as { data: ChangesPageRow<V> }).data;
  }

  return { submit, one, versions, pullRaw, pull };
}

export type Sync = ReturnType<typeof sync>;
