import { count, eq } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { validateName, validatePropertyNames } from '../core/validate.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';

export type DatasetRow = typeof datasets.$inferSelect;

/**
 * Datasets the service holds at most: `datasets` lists them all, and a query is priced by how
 * many it can list (src/graphql/pricing.ts). Made by admins, so far above any real need.
 */
export const MAX_DATASETS = 1000;

function check(names: readonly string[], name?: string): void {
  const error = (name !== undefined ? validateName(name) : null) ?? validatePropertyNames(names);
  if (error) throw new DomainError(error.code, error.message);
}

export async function createDataset(db: Db, name: string, properties: readonly string[]): Promise<DatasetRow> {
  check(properties, name);
  // Two admins creating the last ones at once may pass one over: the bound is for pricing, not exact.
  const [held] = await db.select({ n: count() }).from(datasets);
  if ((held?.n ?? 0) >= MAX_DATASETS) throw new DomainError('TOO_MANY_DATASETS', `the service holds ${MAX_DATASETS} datasets, as many as it allows`);
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
