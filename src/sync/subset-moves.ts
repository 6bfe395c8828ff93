import { sql, type SQL } from 'drizzle-orm';
import { mayHaveSubset, type Role } from '../core/auth.js';
import { DomainError } from '../core/errors.js';
import { validateSubset, type Subset, type SubsetRuleInput } from '../core/subsets.js';
import type { Tx } from '../db/client.js';
import { LOCK, lockAll, rowsOf } from './batch-store.js';
import { inSubsetSql } from './subset-sql.js';

/**
 * What a token held before its rules changed: nothing (a token being made), the whole datasets
 * (a token without a subset until now), or the share of its old rules.
 */
export type Held = null | 'ALL' | Subset;

/**
 * The subset locks of datasets, exclusively: every batch and flush writing to them takes them
 * shared (batch-store loadFacts), so none runs while a token's moves are computed and written.
 * Taken again by the same transaction, they are simply held.
 */
export async function lockSubsets(tx: Tx, datasetNames: readonly string[]): Promise<void> {
  await lockAll(
    tx,
    datasetNames.map((key) => ({ space: LOCK.subset, key })),
  );
}

/**
 * Sets a token's subset and writes, in the caller's transaction, the moves it causes in the
 * token's subset log: core `movement(old rules, new rules, state, state)` for every entity of its
 * datasets, evaluated in SQL (one set-based statement, ENTERED with the entity's current version).
 * Writes of those datasets wait meanwhile: the datasets' subset locks are taken exclusively here
 * and shared by every batch and flush (batch-store loadFacts), so no version is written under
 * the old rules after the moves were computed, nor under none before them.
 */
export async function writeSubsetMoves<T extends { id: string }>(
  tx: Tx,
  token: { role: Role; datasets: readonly string[] | null },
  held: Held,
  input: readonly SubsetRuleInput[],
  save: (subset: Subset) => Promise<T>,
): Promise<T> {
  if (!mayHaveSubset(token)) throw new DomainError('INVALID_SUBSET', 'only a collector token bound to a list of datasets takes a subset (reviewers and admins see whole datasets)');
  const names = [...new Set(token.datasets!)];
  await lockSubsets(tx, names);
  const datasets = rowsOf<{ id: string; name: string; properties: string[] }>(
    await tx.execute(sql`select /* subsetDatasets */ id, name, properties from datasets where name = any(${sql.param(names)}::text[])`),
  );
  const missing = names.filter((n) => !datasets.some((d) => d.name === n));
  if (missing.length > 0) throw new DomainError('UNKNOWN_DATASET', `no dataset named "${missing[0]!.slice(0, 60)}": a token with a subset names existing datasets`);
  const checked = validateSubset(input, datasets.map((d) => d.properties));
  if (!checked.ok) throw new DomainError(checked.error.code, checked.error.message);
  const saved = await save(checked.subset);
  const is = inSubsetSql(sql`e.data`, checked.subset);
  const was: SQL = held === null ? sql`false` : held === 'ALL' ? sql`true` : inSubsetSql(sql`e.data`, held);
  const enters: SQL = held === 'ALL' ? sql`true` : sql`not (${was})`;
  // From the whole datasets a deleted entity leaves too: the device may hold it alive (its delete
  // after the device's cursor); one that holds the delete already drops nothing.
  const leaves: SQL = held === 'ALL' ? sql`(not (${is}) or e.deleted)` : sql`not (${is})`;
  // The same rule as core movement(): LEFT when held and no longer matching; ENTERED when now
  // matching, not held and not deleted. From the whole datasets, every entity is held only as far
  // as the device has pulled: each one matching enters too, marked from_whole, and a pull hands it
  // out only to a device whose cursor is before its version (changes-since.ts; its LEFT rows are
  // marked too, so a cursor part way through these moves keeps that position). Both name the
  // entity's version now: the state it enters with, or the one the device held when it left (a
  // pull nets a LEFT and a later ENTERED of the same version out, see changes-since.ts netOfPage).
  await tx.execute(sql`
    insert into subset_log /* subsetMoves */ (token_id, dataset_id, seq, entity_id, kind, version_seq, from_whole)
    select ${saved.id}::uuid, m.dataset_id, nextval('entity_versions_seq_seq'::regclass), m.id, m.kind,
           (select v.seq from entity_versions v where v.entity_id = m.id and v.version = m.version), ${held === 'ALL'}
      from (select e.id, e.dataset_id, e.version,
                   case when (${was}) and ${leaves} then 'LEFT' when (${is}) and (${enters}) and not e.deleted then 'ENTERED' end as kind
              from entities e where e.dataset_id = any(${sql.param(datasets.map((d) => d.id))}::uuid[])) m
     where m.kind is not null
     -- Positions in entity order, so a page of moves reads the same on every run.
     order by m.id`);
  return saved;
}
