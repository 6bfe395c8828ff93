import { sql } from 'drizzle-orm';
import { GraphQLError } from 'graphql';
import { hasNul } from '../core/json.js';
import type { ConflictType, JsonValue } from '../core/types.js';
import type { entities } from '../db/entities.js';
import type { DatasetRow } from '../sync/datasets.js';
import { builder } from './builder.js';

/** The records view's filters (`entities`): search by label, a property's value, the conflict state. */

export const PropertyFilterInput = builder.inputType('PropertyFilterInput', {
  description: 'Records whose property `name` has the value `value` (JSON equality; null: the property is unset or null).',
  fields: (t) => ({
    name: t.string({ required: true, description: 'A property the dataset declares (UNKNOWN_PROPERTY otherwise).' }),
    value: t.field({ type: 'JSON', required: false, description: 'The value to match; absent or null matches records where it is unset or null.' }),
  }),
});

export interface RecordFilterArgs {
  conflict?: ConflictType | null;
  inConflict?: boolean | null;
  includeDeleted?: boolean | null;
  search?: string | null;
  property?: { name: string; value?: unknown } | null;
}

/** `%`, `_` and the escape character itself match literally in a search. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * The relational-query `where` of a records page, or null when the filters can match nothing
 * (a conflict type asked of records not in conflict, a search no label can hold).
 */
export function recordFilters(dataset: DatasetRow, args: RecordFilterArgs, maxLabelLength: number) {
  if (args.property && !dataset.properties.includes(args.property.name)) {
    throw new GraphQLError(`the dataset does not declare the property "${args.property.name.slice(0, 60)}"`, { extensions: { code: 'UNKNOWN_PROPERTY' } });
  }
  if (args.conflict && args.inConflict === false) return null;
  const search = args.search?.trim() ?? '';
  // Text no label can hold matches nothing (and a search longer than any label need not be run).
  if (hasNul(search) || search.length > maxLabelLength) return null;
  const property = args.property ? { name: args.property.name, value: (args.property.value ?? null) as JsonValue } : null;
  const conflict = args.conflict ? { eq: args.conflict } : args.inConflict === true ? { isNotNull: true as const } : args.inConflict === false ? { isNull: true as const } : undefined;
  return {
    datasetId: dataset.id,
    ...(conflict ? { conflict } : {}),
    ...(args.includeDeleted ? {} : { deleted: false }),
    ...(search ? { label: { ilike: `%${likeLiteral(search)}%` } } : {}),
    ...(property
      ? {
          RAW: (t: typeof entities) =>
            property.value === null
              ? sql`/* recordsByValue */ coalesce(${t.data} -> ${property.name}, 'null'::jsonb) = 'null'::jsonb`
              : sql`/* recordsByValue */ ${t.data} -> ${property.name} = ${JSON.stringify(property.value)}::jsonb`,
        }
      : {}),
  };
}
