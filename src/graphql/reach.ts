import { GraphQLError } from 'graphql';
import { mayReachEntity } from '../core/auth.js';
import { inSubset } from '../core/subsets.js';
import type { PropertyValues } from '../core/types.js';
import { ERROR_CODES } from '../core/types.js';
import type { entities, entityVersions } from '../db/entities.js';
import { datasetNameOf, entityDataOf, versionDataOf, versionDatasetNameOf } from '../sync/access.js';
import type { Context } from './context.js';

/**
 * The dataset rule (core mayReachEntity) where the graph reaches an entity or a version: every field
 * of type Entity or EntityVersion loads it through one of these, from the dataset of whatever leads
 * to it (an event, a held change, a change's result), or says why it needs none (`reach` below); a
 * test walks the schema (test/graphql/dataset-reach.test.ts) and fails for a field of type Entity,
 * EntityVersion, HeldChange or Branch that does not say. An entity it may not reach is, to the
 * caller, an entity that does not exist: null.
 */

/** How a field that yields an entity (or a version, a held change, a run) applies the rule (in the field's extensions, for the schema test). */
export type Reach =
  /** Loaded here, from the dataset of the parent, with the rule. */
  | 'from-parent'
  /** A root field whose arguments name the dataset or the entity, checked by its auth scopes. */
  | 'authorized-root'
  /** The entity's own versions or runs, or a version's own entity: the rule was applied to reach the parent. */
  | 'same-entity';

export const reach = (how: Reach) => ({ extensions: { reach: how } });

/**
 * What the rules need selected with an entity or a version: its dataset's name, and its state
 * (`data`: an entity's current one, a version's after it), which a token's subset is judged on.
 */
export const ENTITY_DATASET = { extras: { reachDataset: datasetNameOf, reachData: entityDataOf } } as const;
export const VERSION_DATASET = { extras: { reachDataset: versionDatasetNameOf, reachData: versionDataOf } } as const;

type Judged = { reachDataset: string; reachData: PropertyValues };

/**
 * The subset rule (DESIGN "Subsets"), beside the dataset rule on the same paths: a token with a
 * subset sees an entity (or a version) only while its state is in its share; outside it, the same
 * answer as for a missing one. Core inSubset, the rule the SQL of src/sync/subset-sql.ts mirrors.
 */
const inShare = (ctx: Context, row: Judged): boolean => inSubset(ctx.principal.subset, row.reachData);

/** The row, when the principal may reach it from `from`; else null (it does not exist, seen from there). */
export function reached<R extends Judged>(ctx: Context, from: string | null | undefined, row: R | null | undefined): R | null {
  // A path that cannot say which dataset it comes from reaches nothing.
  if (!row || from == null) return null;
  return mayReachEntity(ctx.principal, row.reachDataset, from) && inShare(ctx, row) ? row : null;
}

/**
 * A version's entity: FORBIDDEN where the dataset rule refuses it (the version was reached, so it
 * cannot be another dataset's), null where it has left the token's subset since.
 */
export function reachedOrRefused<R extends Judged>(ctx: Context, row: R): R | null {
  if (!mayReachEntity(ctx.principal, row.reachDataset, row.reachDataset)) throw new GraphQLError(ERROR_CODES.FORBIDDEN, { extensions: { code: 'FORBIDDEN' } });
  return inShare(ctx, row) ? row : null;
}

/** plugin-drizzle's `query` of a drizzleField: merges what is given into the planned selection. */
type Query = (selection: never) => unknown;
type Reachable<T> = T & Judged;

/** The entity a path names by id, seen from dataset `from`. */
export async function entityFrom(ctx: Context, query: Query, from: string | null | undefined, id: string | null | undefined): Promise<Reachable<typeof entities.$inferSelect> | null> {
  if (!id || from == null) return null;
  const row = await ctx.db.query.entities.findFirst(query({ where: { id }, ...ENTITY_DATASET } as never) as never);
  return reached(ctx, from, row as Reachable<typeof entities.$inferSelect> | undefined);
}

/** The version a path names by entity id and number, seen from dataset `from`. */
export async function versionFrom(
  ctx: Context,
  query: Query,
  from: string | null | undefined,
  entityId: string | null | undefined,
  version: number | null | undefined,
): Promise<Reachable<typeof entityVersions.$inferSelect> | null> {
  if (!entityId || version == null || from == null) return null;
  const row = await ctx.db.query.entityVersions.findFirst(query({ where: { entityId, version }, ...VERSION_DATASET } as never) as never);
  return reached(ctx, from, row as Reachable<typeof entityVersions.$inferSelect> | undefined);
}
