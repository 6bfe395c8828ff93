import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
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
