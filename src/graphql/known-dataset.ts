import { GraphQLError } from 'graphql';
import { findDataset, type DatasetRow } from '../sync/datasets.js';
import type { Context } from './context.js';

/**
 * Every read that names a dataset (lists, the backlog, refused changes, subscriptions) answers
 * UNKNOWN_DATASET for one that does not exist, rather than an empty list that reads as "nothing to
 * do". A top-level error with its code, as these fields report their other errors. It runs after
 * the field's auth scopes, so a token restricted to other datasets gets FORBIDDEN first and learns
 * nothing of which names exist.
 */
export async function knownDataset(ctx: Pick<Context, 'db'>, name: string): Promise<DatasetRow> {
  const dataset = await findDataset(ctx.db, name);
  if (!dataset) throw new GraphQLError(`no dataset named "${name.slice(0, 60)}"`, { extensions: { code: 'UNKNOWN_DATASET' } });
  return dataset;
}
