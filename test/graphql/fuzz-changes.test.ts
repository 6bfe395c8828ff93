import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, postRaw } from '../helpers/domain.js';

/**
 * Issue 10's fuzz suite: batches of generated changes, every field at its edges (numbers at the
 * int32 and double limits, deep and long values, odd unicode, lone surrogates, NUL, ids of every
 * shape), sent to the running server as GraphQL variables. Whatever they hold: never a 5xx,
 * never an internal error, every change of a batch answered, and each answer as recorded.
 */
const t = useApp();
const d = domain(t);
let ds: string;
const entities: string[] = [];
beforeAll(async () => {
  ds = await d.createDataset(['height', 'notes', 'kids']);
  // Seed 0 holds a count near the largest double, for INCREMENT to push past it.
  for (let i = 0; i < 3; i++) entities.push(await d.create(ds, `Seed ${i}`, { height: i === 0 ? 1.7e308 : i, kids: [] }));
});

const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) {
  __typename ... on MutationSubmitChangesSuccess { data { changeId outcome originalOutcome error { code message } } } ... on Error { code message } } }`;

const oddText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udc00y', '🌳', '\u202e', 'label\n', 'x'.repeat(250), 'y'.repeat(5000)),
);
const edgeNumber = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.1, 1e308, -1e308, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 2 ** 53, 2 ** 31, -(2 ** 31)),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const int32 = fc.oneof(fc.constantFrom(-(2 ** 31), -1, 0, 1, 2, 3, 10_000, 10_001, 2 ** 31 - 1), fc.integer({ min: -5, max: 12 }));
/** Deep values go into the body as text (too deep for JSON.stringify on this side): a marker. */
const DEEP = '__deep__';
const deep = fc.oneof(fc.integer({ min: 30, max: 200 }), fc.constantFrom(20_000, 100_000)).map((n) => `${DEEP}${n}`);
const jsonValue = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: edgeNumber },
  { weight: 2, arbitrary: oddText },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.constant('z'.repeat(70_000)) },
);
const propertyName = fc.oneof(fc.constantFrom('height', 'notes', 'kids', 'label', '__proto__', 'constructor', ''), oddText);
const id = fc.oneof({ weight: 6, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) }, { weight: 2, arbitrary: oddText });

const fields = {
  id,
  deviceId: fc.option(oddText),
  dataset: fc.oneof({ weight: 6, arbitrary: fc.constant('__ds__') }, { weight: 1, arbitrary: oddText }),
  entityId: fc.option(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0, 1, 2).map((i) => `__entity${i}__`) }, { weight: 3, arbitrary: fc.uuid() }, { weight: 1, arbitrary: oddText })),
  action: fc.constantFrom('CREATE', 'UPDATE', 'DELETE'),
  label: fc.option(oddText),
  data: fc.option(fc.oneof(fc.dictionary(propertyName, jsonValue, { maxKeys: 4 }), jsonValue)),
  baseVersion: fc.option(int32),
  trunkVersion: fc.option(int32),
  branchId: fc.option(fc.oneof(fc.uuid(), oddText)),
  localId: fc.option(oddText),
  operations: fc.option(
    fc.array(
      fc.record({
        op: fc.constantFrom('SET', 'UNSET', 'LIST_ADD', 'LIST_REMOVE', 'INCREMENT', 'SET_LABEL'),
        property: fc.option(propertyName),
        value: fc.option(jsonValue),
        index: fc.option(int32),
        by: fc.option(edgeNumber),
      }),
      { maxLength: 3 },
    ),
  ),
};

/** Any change; or one named by a local id (no entityId); or a counter pushed past the largest double. */
function changeArb() {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record(fields, { requiredKeys: ['id', 'dataset', 'action'] }) },
    { weight: 2, arbitrary: fc.record({ ...fields, entityId: fc.constant(null), localId: oddText, deviceId: oddText }, { requiredKeys: ['id', 'dataset', 'action', 'localId', 'deviceId'] }) },
    {
      weight: 1,
      arbitrary: fc.record({
        id: fc.uuid(),
        dataset: fc.constant('__ds__'),
        entityId: fc.constant('__entity0__'),
        action: fc.constant('UPDATE'),
        baseVersion: fc.integer({ min: 1, max: 3 }),
        operations: fc.constant([{ op: 'INCREMENT', property: 'height', by: 1e308 }]),
      }),
    },
  );
}

/** A batch, sometimes with a change repeated in other letter case (a resend inside the batch). */
const batchArb = fc
  .tuple(fc.array(changeArb(), { minLength: 1, maxLength: 5 }), fc.option(fc.nat(4)))
  .map(([changes, again]) => (again === null ? changes : [...changes, { ...changes[again % changes.length]!, id: String(changes[again % changes.length]!.id).toUpperCase() }]));

/** Placeholders become the test's dataset and seed entities, so many changes reach real rows. */
function bind(change: Record<string, unknown>): Record<string, unknown> {
  const out = { ...change };
  if (out.dataset === '__ds__') out.dataset = ds;
  const m = typeof out.entityId === 'string' ? /^__entity(\d)__$/.exec(out.entityId) : null;
  if (m) out.entityId = entities[Number(m[1])];
  return out;
}

/** The request body, with every deep-value marker spliced in as nested-array text. */
function body(batch: readonly Record<string, unknown>[]): string {
  return JSON.stringify({ query: SUBMIT, variables: { c: batch } }).replace(new RegExp(`"${DEEP}(\\d+)"`, 'g'), (_m, n: string) => `${'['.repeat(Number(n))}1${']'.repeat(Number(n))}`);
}

type Answer = { changeId: string; outcome: string; originalOutcome: string | null; error: { code: string; message: string } | null };

async function submit(batch: readonly Record<string, unknown>[]): Promise<Answer[]> {
  const res = await postRaw(t, body(batch));
  expect(res.status, JSON.stringify(res.errors)).toBe(200);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  const answer = res.data.submitChanges;
  expect(answer.__typename, JSON.stringify(answer)).toBe('MutationSubmitChangesSuccess');
  expect(answer.data).toHaveLength(batch.length);
  return answer.data;
}

describe('fuzzed batches against the running server', () => {
  it('never a 5xx or an internal error; every change answered, as recorded; a resend of the batch changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(batchArb, async (generated) => {
        const batch = generated.map(bind);
        const first = await submit(batch);
        for (const r of first) {
          expect(['APPLIED', 'HELD', 'DUPLICATE', 'REJECTED']).toContain(r.outcome);
          expect(r.error?.code, JSON.stringify(r)).not.toBe('INTERNAL_ERROR');
          if (r.outcome === 'REJECTED') expect(r.error!.message.length).toBeGreaterThan(0);
        }
        // The whole batch again, as a client that lost the answer would: nothing is processed
        // twice, and what each change came to is what the first answer said (a held change may
        // have been released or refused since).
        const again = await submit(batch);
        again.forEach((r, i) => {
          const was = first[i]!;
          const context = JSON.stringify({ change: batch[i], first: was, again: r }).slice(0, 2000);
          if (was.outcome === 'REJECTED' && (was.error!.code === 'CHANGE_ID_REUSED' || was.error!.code === 'MALFORMED_ID' && !isKey(was.changeId))) {
            expect({ outcome: r.outcome, code: r.error?.code }, context).toEqual({ outcome: 'REJECTED', code: was.error!.code });
            return;
          }
          expect(r.outcome, context).toBe('DUPLICATE');
          const original = was.outcome === 'DUPLICATE' ? was.originalOutcome : was.outcome;
          if (original === 'HELD') expect(['HELD', 'APPLIED', 'REJECTED'], context).toContain(r.originalOutcome);
          else expect(r.originalOutcome, context).toBe(original);
        });
      }),
      { numRuns: 60, endOnFailure: true },
    );
    // The server still serves, and the seeds are intact entities.
    for (const e of entities) expect((await d.entity(e))!.id).toBe(e);
    expect((await d.one({ id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE', label: 'after' })).outcome).toBe('APPLIED');
  });
});

/** An id a change is recorded under: 1 to 200 characters (longer ones are cut, and never match again). */
const isKey = (id: string) => id.length > 0 && id.length <= 200;
