import { eq } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { validateName, validatePropertyNames } from '../core/validate.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';

export type DatasetRow = typeof datasets.$inferSelect;

function check(names: readonly string[], name?: string): void {
  const error = (name !== undefined ? validateName(name) : null) ?? validatePropertyNames(names);
  if (error) throw new DomainError(error.code, error.message);
}

export async function createDataset(db: Db, name: string, properties: readonly string[]): Promise<DatasetRow> {
  check(properties, name);
  const [row] = await db.insert(datasets).values({ name, properties: [...properties] }).onConflictDoNothing().returning();
  if (!row) throw new DomainError('DATASET_EXISTS', `a dataset named "${name}" already exists`);
  return row;
}

/** Properties are only ever added: removing one would strand values already written. */
export async function addDatasetProperties(db: Db, name: string, properties: readonly string[]): Promise<DatasetRow> {
  check(properties);
  if (validateName(name)) throw new DomainError('UNKNOWN_DATASET', `no dataset named "${name.slice(0, 60)}"`);
  return db.transaction(async (tx) => {
    const [current] = await tx.select().from(datasets).where(eq(datasets.name, name)).for('update').limit(1);
    if (!current) throw new DomainError('UNKNOWN_DATASET', `no dataset named "${name}"`);
    const merged = [...current.properties, ...properties.filter((p) => !current.properties.includes(p))];
    const [row] = await tx.update(datasets).set({ properties: merged }).where(eq(datasets.id, current.id)).returning();
    return row!;
  });
}


/** The dataset a read names, or null: a name that could never be valid names none, without asking the database. */
export async function findDataset(db: Db, name: string): Promise<DatasetRow | null> {
  if (validateName(name)) return null;
  const [row] = await db.select().from(datasets).where(eq(datasets.name, name)).limit(1);
  return row ?? null;
}
