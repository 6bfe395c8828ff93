import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app.js';
import { domain } from '../helpers/domain.js';
import { socketClient, waitUntil, type SocketClient } from '../helpers/live.js';

/**
 * Issue 11: an event carries the version it announces. `entity` is the entity as it is when the
 * event is read; `entityVersion` is the version the event is about, as it was made.
 */
const t = useApp();
const d = domain(t);
const sockets: SocketClient[] = [];
afterAll(async () => {
  for (const s of sockets) await s.close();
});

const SUB = `subscription($ds: String!) {
  entityChanged(dataset: $ds) { entityId version entityVersion { version data } entity { version data } } }`;
const CONFLICTS = `subscription($ds: String!) {
  conflictDetected(dataset: $ds) { entityId version type entityVersion { version data conflict conflictingProperties } entity { version } } }`;

describe('events and the version they announce', () => {
  it('entityChanged and conflictDetected: entityVersion is the announced version, though later ones landed in the same batch', async () => {
    const ds = await d.createDataset(['height']);
    const sc = socketClient(t.url);
    sockets.push(sc);
    const changed = sc.subscribe(SUB, { ds });
    const conflicts = sc.subscribe(CONFLICTS, { ds });
    // Live once a probe's events arrive on both: a conflict on a fresh probe entity, until they do.
    await waitUntil(
      async () => {
        const probe = await d.create(ds, 'Probe', { height: 0 });
        await d.update(ds, probe, 1, { height: 1 });
        await d.update(ds, probe, 1, { height: 2 });
        return (changed.values.length > 0 && conflicts.values.length > 0) || null;
      },
      'both subscriptions to deliver',
      10_000,
      100,
    );

    const id = randomUUID();
    const r = await d.submit(
      { dataset: ds, entityId: id, action: 'CREATE', label: 'Oak', data: { height: 1 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 2 } },
      { dataset: ds, entityId: id, action: 'UPDATE', baseVersion: 1, data: { height: 3 } },
    );
    expect(r.map((x) => [x.outcome, x.version, x.conflict])).toEqual([
      ['APPLIED', 1, null],
      ['APPLIED', 2, null],
      ['APPLIED', 3, 'HARD'],
    ]);
    const of = <T extends { entityId?: string; entity?: unknown }>(values: T[]) => values.filter((v) => v.entityId === id);
    await waitUntil(() => of(changed.values).length >= 3 || null, 'the batch\'s three events', 5000, 20);
    expect(of(changed.values)).toEqual([1, 2, 3].map((version) => ({ entityId: id, version, entityVersion: { version, data: { height: version } }, entity: { version: 3, data: { height: 3 } } })));
    await waitUntil(() => conflicts.values.some((c: { entityId?: string }) => c.entityId === id) || null, 'the batch\'s conflict', 5000, 20);
    const conflict = conflicts.values.filter((c: { entityId?: string }) => c.entityId === id).map(({ entityId: _e, ...c }: { entityId?: string }) => c);
    expect(conflict).toEqual([{ version: 3, type: 'HARD', entityVersion: { version: 3, data: { height: 3 }, conflict: 'HARD', conflictingProperties: ['height'] }, entity: { version: 3 } }]);
  });
});
