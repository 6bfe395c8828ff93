import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, ok } from '../helpers/domain.js';

/**
 * Issue 19: a property both sides set to the same value is not a conflict, on any path. The path
 * that missed it: a run's create arriving after a forced update of its run made the entity, with
 * the same label and values. It goes beneath the forced update (which keeps its values), and is
 * flagged SOFT like anything applied beneath a forced change, but nothing was lost: not HARD.
 */
const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const o = offline(t);

const forceOne = async (changeId: string) =>
  ok(await t.gql(`mutation($c: String!) { flushBacklog(olderThanSeconds: 0, changeId: $c) { changes { changeId outcome version conflict } } }`, { c: changeId })).flushBacklog.changes;

describe('same values on both sides of a forced run', () => {
  it.each([
    ['with the run id', true],
    ['without it (as ODK Collect sends it)', false],
  ])('a late create %s, same label and values as the forced update: SOFT, no conflicting property', async (_name, withRunId) => {
    const ds = await d.createDataset(['species', 'height', 'health']);
    const run = offlineRun(ds, randomUUID(), null, { deviceId: 'collect-1' });
    const values = { species: 'oak', height: 12, health: 'good' };
    const update = run.update(1, values, { label: 'Oak by the gate' });
    expect(await o.one(update)).toMatchObject({ outcome: 'HELD', waitsFor: 0 });
    expect(await forceOne(update.id)).toEqual([{ changeId: update.id, outcome: 'APPLIED', version: 1, conflict: 'SOFT' }]);

    const create = { ...run.create('Oak by the gate', values), ...(withRunId ? {} : { branchId: null }) };
    expect(await o.one(create)).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'SOFT', conflictingProperties: [] });
    const e = ok(await t.gql(`query($id: ID!) { entity(id: $id) { label data conflict conflictingProperties versions { version source conflict conflictingProperties } } }`, { id: run.entityId })).entity;
    expect(e).toEqual({
      label: 'Oak by the gate',
      data: values,
      conflict: 'SOFT',
      conflictingProperties: [],
      versions: [
        { version: 1, source: 'FORCED', conflict: 'SOFT', conflictingProperties: [] },
        { version: 2, source: 'IN_ORDER', conflict: 'SOFT', conflictingProperties: [] },
      ],
    });
  });

  it('a value that differs is still HARD, on that property alone', async () => {
    const ds = await d.createDataset(['species', 'height', 'health']);
    const run = offlineRun(ds, randomUUID(), null, { deviceId: 'collect-1' });
    const update = run.update(1, { species: 'oak', height: 12, health: 'good' }, { label: 'Oak by the gate' });
    expect(await o.one(update)).toMatchObject({ outcome: 'HELD' });
    await forceOne(update.id);
    const create = run.create('Oak by the gate', { species: 'oak', height: 11, health: 'good' });
    expect(await o.one(create)).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: 'HARD', conflictingProperties: ['height'] });
    // The forced update is later in the run: its values stay.
    expect((await d.entity(run.entityId))!.data).toEqual({ species: 'oak', height: 12, health: 'good' });
  });
});
