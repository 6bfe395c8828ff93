import { ROLES, type Principal } from '../../core/auth.js';
import type { Subset, SubsetRule } from '../../core/subsets.js';
import { createToken, listTokens, revokeToken, setTokenSubset, subsetTokensOf } from '../../sync/tokens.js';
import { builder } from '../builder.js';
import { Entity } from './entities.js';

export const RoleEnum = builder.enumType('Role', {
  description: 'What an API token may do.',
  values: {
    collector: { description: 'Submit changes to, pull and subscribe to its datasets (as its device, when it has one).' },
    reviewer: { description: 'Read everything in its datasets and resolve conflicts.' },
    admin: { description: 'Everything: datasets, tokens, backlog flushes.' },
  } satisfies Record<(typeof ROLES)[number], unknown>,
});

export const SubsetRuleRef = builder.objectRef<SubsetRule>('SubsetRule').implement({
  description: "One rule of a token's subset: the entity's `property` holds one of `values`.",
  fields: (t) => ({
    property: t.exposeString('property', { description: 'A property declared by each of the token\'s datasets.' }),
    values: t.field({ type: ['String'], description: 'A string property matches as it is, a boolean as "true"/"false", an integer (up to 15 digits) in decimal.', resolve: (r) => [...r.values] }),
  }),
});

export const SubsetRuleInput = builder.inputType('SubsetRuleInput', {
  description: "One rule of a token's subset: the entity's `property` must hold one of `values`.",
  fields: (t) => ({
    property: t.string({ required: true, description: "A property declared by each of the token's datasets." }),
    values: t.stringList({ required: true, description: '1 to 100 values of 1 to 200 characters.' }),
  }),
});

/** A subset as the API shows it: null for the whole datasets (no rules, or none left). */
const shown = (subset: Subset | null): Subset | null => (subset && subset.length > 0 ? subset : null);

export const ApiToken = builder.drizzleObject('apiTokens', {
  name: 'ApiToken',
  description: 'An API token. Its secret is shown once, when it is created, and never stored.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    role: t.field({ type: RoleEnum, resolve: (row) => row.role }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: 'The only device it may act as; null: any.' }),
    datasets: t.exposeStringList('datasets', { nullable: true, description: 'The datasets it may use; null: all.' }),
    subset: t.field({
      type: [SubsetRuleRef],
      nullable: true,
      description: 'The part of its datasets it sees: the entities matching every rule. Null: the whole datasets.',
      select: { columns: { subset: true } },
      resolve: (row) => shown(row.subset),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

const NewApiToken = builder.objectRef<{ secret: string; token: typeof ApiToken.$inferType }>('NewApiToken').implement({
  fields: (t) => ({
    secret: t.exposeString('secret', { description: 'Send as `Authorization: Bearer <secret>`. Shown only this once.' }),
    token: t.field({ type: ApiToken, resolve: (r) => r.token }),
  }),
});

const Viewer = builder.objectRef<Principal>('Viewer').implement({
  description: 'Who the request authenticated as.',
  fields: (t) => ({
    tokenId: t.exposeID('tokenId', { nullable: true, description: 'Null for configured anonymous access.' }),
    role: t.field({ type: RoleEnum, resolve: (p) => p.role }),
    deviceId: t.exposeString('deviceId', { nullable: true }),
    datasets: t.field({ type: ['String'], nullable: true, resolve: (p) => p.datasets }),
    subset: t.field({ type: [SubsetRuleRef], nullable: true, description: 'The part of its datasets it sees; null: the whole datasets.', resolve: (p) => shown(p.subset) }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({ type: Viewer, resolve: (_root, _args, ctx) => ctx.principal }),
  apiTokens: t.field({
    type: [ApiToken],
    description: 'Every token, revoked ones too, oldest first.',
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => listTokens(ctx.db),
  }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: NewApiToken,
    authScopes: { admin: true },
    errors: {},
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: RoleEnum, required: true }),
      deviceId: t.arg.string({ description: 'Bind the token to one device.' }),
      datasets: t.arg.stringList({ description: 'Restrict the token to these datasets; absent: all.' }),
      subset: t.arg({
        type: [SubsetRuleInput],
        description: 'Only the entities of its datasets matching every rule (at most 8 rules, each on a property every one of its datasets declares). Collector tokens with datasets only; absent or empty: the whole datasets.',
      }),
    },
    resolve: (_root, args, ctx) => createToken(ctx.db, args),
  }),
  setTokenSubset: t.field({
    type: ApiToken,
    description:
      "Reassigns a device: the token's subset changes at once, on every instance. Its next pull (from any cursor it holds) drops the entities that left the subset and gets those that entered it. An empty list: the whole datasets.",
    authScopes: { admin: true },
    errors: {},
    args: {
      tokenId: t.arg.id({ required: true, description: "The token's id (ApiToken.id)." }),
      subset: t.arg({ type: [SubsetRuleInput], required: true, description: 'The new rules (at most 8, each on a property every one of its datasets declares).' }),
    },
    resolve: async (_root, args, ctx) => {
      const { token, events } = await setTokenSubset(ctx.db, String(args.tokenId), args.subset);
      ctx.publish(events);
      return token;
    },
  }),
  revokeApiToken: t.field({
    type: ApiToken,
    description: 'Revokes a token at once: its open sockets and event streams are closed, on every instance.',
    authScopes: { admin: true },
    errors: {},
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const { token, events } = await revokeToken(ctx.db, String(args.id));
      ctx.publish(events);
      return token;
    },
  }),
}));

builder.drizzleObjectField(Entity, 'subsetTokens', (t) =>
  t.loadableList({
    type: ApiToken,
    description: "The API tokens (devices) whose subset includes this entity as it is now, oldest first; tokens without a subset see every entity of their datasets and are not listed. Reviewers and admins only.",
    authScopes: { reviewer: true },
    // One statement for a whole page of entities.
    byPath: true,
    load: (ids: string[], ctx) => subsetTokensOf(ctx.db, ids),
    resolve: (e) => e.id,
  }),
);
