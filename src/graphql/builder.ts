import SchemaBuilder from '@pothos/core';
import DrizzlePlugin from '@pothos/plugin-drizzle';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ComplexityPlugin from '@pothos/plugin-complexity';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { GraphQLError } from 'graphql';
import { isAdmin, mayActAsDevice, mayReachEntity, mayReview, maySeeChange, maySubmit, maySubmitAll, mayUseAllDatasets, mayUseDataset } from '../core/auth.js';
import { DomainError } from '../core/errors.js';
import { ERROR_CODES, type JsonValue } from '../core/types.js';
import { relations } from '../db/schema.js';
import { datasetOfChange, datasetOfEntity, datasetsOfBranch } from '../sync/access.js';
import type { Context } from './context.js';
import { PLAIN_ROWS_PLUGIN } from './plain-rows.js';

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
  /** What a field may require of the request's principal (rules in core/auth.ts). */
  AuthScopes: {
    /** collector or admin */
    submitter: boolean;
    /** reviewer or admin */
    reviewer: boolean;
    admin: boolean;
    /** May use this dataset (by name). */
    dataset: string;
    /** Unrestricted by dataset. */
    allDatasets: boolean;
    /** May act as (and see the local ids of) this device. */
    device: string;
    /** May submit every change of this batch (datasets and device). */
    batch: readonly { dataset?: string | null; deviceId?: string | null }[];
    /** May use the dataset of this entity / branch / change (by id). */
    entity: string;
    branch: string;
    change: string;
  };
}>({
  defaultFieldNullability: false,
  // Scope auth first, so no other plugin's wrapper runs before the check.
  // Plain rows just outside plugin-drizzle, whose per-field check they skip (graphql/plain-rows.ts).
  plugins: [ScopeAuthPlugin, ComplexityPlugin, ErrorsPlugin, RelayPlugin, DataloaderPlugin, PLAIN_ROWS_PLUGIN, DrizzlePlugin],
  // Each field costs 1; a list multiplies what is selected under it by the most items it can
  // hold (src/graphql/pricing.ts sets each from its arguments or its cap; 10 is only the
  // fallback for a list that names none, and test/graphql/list-prices.test.ts finds every list).
  // Checked before any resolver runs, and for a subscription when it is made (server/ws.ts, SSE).
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
    limit: (ctx) => ({ complexity: ctx.limits.maxQueryComplexity }),
    // Worded and coded like the document limits of server/hardening.ts.
    complexityError: (_kind, result) =>
      new GraphQLError(`query cost limit of ${result.maxComplexity} exceeded (found ${result.complexity})`, {
        extensions: { code: 'QUERY_TOO_COMPLEX', limit: { name: 'maxCost', max: result.maxComplexity, found: result.complexity } },
      }),
  },
  scopeAuth: {
    // Refuse a subscription when it is made, not on its first event.
    authorizeOnSubscribe: true,
    authScopes: ({ principal: p, db }) => ({
      submitter: maySubmit(p),
      reviewer: mayReview(p),
      admin: isAdmin(p),
      dataset: (name) => mayUseDataset(p, name),
      allDatasets: mayUseAllDatasets(p),
      device: (deviceId) => mayActAsDevice(p, deviceId),
      batch: (changes) => maySubmitAll(p, changes),
      // By its own id: the entity's dataset alone decides (core mayReachEntity).
      entity: async (id) => mayUseAllDatasets(p) || mayReachEntity(p, await datasetOfEntity(db, id), null),
      // A run is seen from its dataset: the same id may be a run in several; one the principal may use will do.
      branch: async (id) => mayUseAllDatasets(p) || (await datasetsOfBranch(db, id)).some((name) => mayUseDataset(p, name)),
      change: async (id) => maySeeChange(p, await datasetOfChange(db, id)),
    }),
    // A top-level error with a code, like UNAUTHENTICATED: the field is not the caller's to see.
    unauthorizedError: () => new GraphQLError(ERROR_CODES.FORBIDDEN, { extensions: { code: 'FORBIDDEN' } }),
  },
  // Only our own error class becomes a typed result; anything else stays masked by yoga. The
  // types the plugins make get descriptions here (each field describes its own `data`), so
  // schema.graphql stays a complete reference (test/graphql/schema.test.ts checks every one).
  errors: {
    defaultTypes: [DomainError],
    defaultUnionOptions: { description: 'The answer of a field that can fail with a typed error: its `…Success` (the result in `data`) or an `Error` with a code and a message.' },
    defaultResultOptions: { description: 'The field succeeded; its result is in `data`.' },
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesOnConnection: { description: 'The items of this page, in order.', complexity: { field: 1, multiplier: 1 } },
    defaultConnectionTypeOptions: { description: 'A page of a list: its items (`nodes`, or `edges` with their cursors) and where it sits (`pageInfo`).' },
    defaultEdgeTypeOptions: { description: 'One item of a page, with its cursor.' },
    // A connection field is priced by its page size; its edges and nodes then count once each.
    edgesFieldOptions: { description: 'The items of this page with their cursors, in order.', complexity: { field: 1, multiplier: 1 } },
    nodeFieldOptions: { description: 'The item.' },
    cursorFieldOptions: { description: "This item's place in the list: pass it as `after` or `before` for the items beyond it." },
    pageInfoFieldOptions: { description: 'Whether more items come before or after this page, and the cursors of its ends.' },
    pageInfoTypeOptions: { description: 'Where a page sits in its list.' },
    hasNextPageFieldOptions: { description: 'More items follow this page: ask with `after: endCursor`.' },
    hasPreviousPageFieldOptions: { description: 'More items come before this page: ask with `before: startCursor`.' },
    startCursorFieldOptions: { description: 'The cursor of the first item of this page; null when the page is empty.' },
    endCursorFieldOptions: { description: 'The cursor of the last item of this page; null when the page is empty.' },
    firstArgOptions: { description: 'At most this many items, from the start of the list (or from `after`).' },
    lastArgOptions: { description: 'At most this many items, from the end of the list (or up to `before`).' },
    afterArgOptions: { description: "Only the items after this cursor (a page's `endCursor`, or an edge's `cursor`)." },
    beforeArgOptions: { description: "Only the items before this cursor (a page's `startCursor`, or an edge's `cursor`)." },
  },
  drizzle: { client: (ctx) => ctx.db, getTableConfig, relations, maxConnectionSize: 500 },
});
