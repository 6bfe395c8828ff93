import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { changesSince } from '../../src/sync/changes-since.js';
import { databaseBefore } from '../helpers/migrations.js';
import { rowsOf } from '../../src/sync/batch-store.js';

/**
 * The subsets migration runs on an existing database (issue 20 item 7): versions stored before it
 * get their entity's dataset (backfilled in the migration), and pulls read them by dataset after.
 * The database is migrated to the migration before, filled as the service filled it then, and
 * migrated again.
 */

let close: () => Promise<void> = async () => {};
afterAll(() => close());

describe('the subsets migration on a database with data', () => {
  it('backfills every stored version with its dataset; pulls read them by dataset after', async () => {
    const before = await databaseBefore('_subsets');
    close = before.close;
    const { db } = before;
    const [trees, birds] = [randomUUID(), randomUUID()];
    const [oak, owl] = [randomUUID(), randomUUID()];
    await db.execute(sql`insert into datasets (id, name, properties) values (${trees}, 'trees', '{height}'), (${birds}, 'birds', '{height}')`);
    await db.execute(sql`insert into entities (id, dataset_id, label, data, version) values (${oak}, ${trees}, 'Oak', '{"height": 2}', 2), (${owl}, ${birds}, 'Owl', '{"height": 1}', 1)`);
    await db.execute(sql`insert into entity_versions (entity_id, version, action, label, data, changed, source, change_id) values
      (${oak}, 1, 'CREATE', 'Oak', '{"height": 1}', '{"height": 1}', 'ONLINE', ${randomUUID()}),
      (${owl}, 1, 'CREATE', 'Owl', '{"height": 1}', '{"height": 1}', 'ONLINE', ${randomUUID()}),
      (${oak}, 2, 'UPDATE', 'Oak', '{"height": 2}', '{"height": 2}', 'ONLINE', ${randomUUID()})`);

    await before.migrateAll();
    const rows = rowsOf<{ entity_id: string; version: number; dataset_id: string }>(await db.execute(sql`select entity_id, version, dataset_id from entity_versions order by seq`));
    expect(rows).toEqual([
      { entity_id: oak, version: 1, dataset_id: trees },
      { entity_id: owl, version: 1, dataset_id: birds },
      { entity_id: oak, version: 2, dataset_id: trees },
    ]);
    const [column] = rowsOf<{ is_nullable: string }>(await db.execute(sql`select is_nullable from information_schema.columns where table_name = 'entity_versions' and column_name = 'dataset_id'`));
    expect(column).toEqual({ is_nullable: 'NO' });
    const page = await changesSince(db, { dataset: 'trees' });
    expect(page.versions.map((v) => [v.entityId, v.version])).toEqual([
      [oak, 1],
      [oak, 2],
    ]);
    expect([page.entered, page.left]).toEqual([[], []]);
  });
});
