import SchemaBuilder from '@pothos/core';
import DrizzlePlugin from '@pothos/plugin-drizzle';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { DomainError } from '../core/errors.js';
import type { JsonValue } from '../core/types.js';
import { relations } from '../db/schema.js';
import type { Context } from './context.js';

/** Configuration only: types live in types/<domain>.ts, schema.ts assembles them. */
export const builder = new SchemaBuilder<{
  Context: Context;
  DrizzleRelations: typeof relations;
  DefaultFieldNullability: false;
  Scalars: {
    JSON: { Input: JsonValue; Output: unknown };
    JSONObject: { Input: Record<string, JsonValue>; Output: Record<string, unknown> };
    DateTime: { Input: Date; Output: Date | string };
  };
}>({
  defaultFieldNullability: false,
  plugins: [ErrorsPlugin, RelayPlugin, DrizzlePlugin],
  // Only our own error class becomes a typed result; anything else stays masked by yoga.
  errors: { defaultTypes: [DomainError] },
  relay: { clientMutationId: 'omit', cursorType: 'String', nodesOnConnection: true },
  drizzle: { client: (ctx) => ctx.db, getTableConfig, relations, maxConnectionSize: 500 },
});
