import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { domain, offline, offlineRun, ok } from '../helpers/domain.js';

/** The records the browser tests look at, made through the API with an admin token (what a field app and an office would send). */
export function scenario(t: TestApp, adminToken: () => string) {
  const asAdmin = {
    get url() {
      return t.url;
    },
    gql: (query: string, variables?: Record<string, unknown>) => t.gqlAs(adminToken(), query, variables),
  } as TestApp;
  const d = domain(asAdmin);
  const o = offline(asAdmin);

  /** A birch edited twice on version 1, on different properties: a SOFT conflict. */
  async function softBirch(ds: string): Promise<string> {
    const id = await d.create(ds, 'Birch by the pond', { species: 'birch', height: 8 });
    await d.update(ds, id, 1, { height: 9 }, { deviceId: 'office-1' });
    expect(await d.update(ds, id, 1, { health: 'fair' }, { deviceId: 'tablet-3' })).toMatchObject({ conflict: 'SOFT' });
    return id;
  }

  /**
   * README's session: a tablet's offline run arrives out of order around an online edit (versions
   * 3-5, the middle one HARD on height with no author's view), then the office, which had not
   * refreshed since version 2, sets the height again (version 6, HARD: author saw 13, server had 14).
   */
  async function oakSession(ds: string): Promise<string> {
    const id = await d.create(ds, 'Oak by the gate', { species: 'oak', height: 12 });
    const run = offlineRun(ds, id, 1, { deviceId: 'tablet-7' });
    expect(await o.one(run.update(3, { health: 'good' }))).toMatchObject({ outcome: 'HELD' });
    await d.update(ds, id, 1, { height: 13 }, { deviceId: 'office-1' });
    expect(await o.one(run.update(2, { height: 14 }))).toMatchObject({ outcome: 'HELD' });
    const first = await o.one(run.update(1, { species: 'Quercus robur' }));
    expect(first.released.map((r) => [r.version, r.conflict])).toEqual([
      [4, 'HARD'],
      [5, 'SOFT'],
    ]);
    expect(await d.update(ds, id, 2, { height: 16 }, { deviceId: 'office-1' })).toMatchObject({ version: 6, conflict: 'HARD', conflictingProperties: ['height'] });
    return id;
  }

  /** A change of a run whose previous step never arrived: held until forced. */
  async function heldChange(ds: string, entityId: string, version: number, deviceId = 'tablet-9'): Promise<string> {
    const change = offlineRun(ds, entityId, version, { deviceId }).update(2, { health: 'poor' });
    expect(await o.one(change)).toMatchObject({ outcome: 'HELD', waitsFor: version });
    return change.id;
  }

  async function entity(id: string) {
    return ok(await asAdmin.gql(`query($id: ID!) { entity(id: $id) { version conflict data versions { version source conflict } } }`, { id })).entity;
  }

  async function held(ds: string): Promise<string[]> {
    return (await o.held({ dataset: ds })).map((h) => h.changeId);
  }

  /** One more HARD conflict on an existing entity, for live updates. */
  async function conflictOn(ds: string, id: string, baseVersion: number): Promise<void> {
    await d.update(ds, id, baseVersion, { height: Math.round(Math.random() * 100) }, { deviceId: 'office-2' });
  }

  return { d, o, softBirch, oakSession, heldChange, entity, held, conflictOn, newId: randomUUID };
}
