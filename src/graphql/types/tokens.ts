import type { Principal, Role } from '../../core/auth.js';
import { SUBSET_LIMITS, type Subset, type SubsetRule } from '../../core/subsets.js';
import { GraphQLError } from 'graphql';
import { isUuid } from '../../core/validate.js';
import { connectionPrice, pageSize } from '../pricing.js';
import { createToken, revokeToken, setTokenSubset, subsetTokenPages, type TokenRow } from '../../sync/tokens.js';
import { builder } from '../builder.js';
import { Entity } from './entities.js';

/** GraphQL spells a role in upper case like every enum; the core, the database and the CLI in lower case. */
const ROLE_NAMES = { collector: 'COLLECTOR', reviewer: 'REVIEWER', admin: 'ADMIN' } as const satisfies Record<Role, string>;
const legacy = (name: string) => ({
  description: `The old lower-case spelling of \`${name}\`, still accepted as input for this release; answers always say \`${name}\`.`,
  deprecationReason: `Use ${name}: roles are spelt in upper case like every enum, and the lower-case spelling goes in the next release.`,
});

export const RoleEnum = builder.enumType('Role', {
  description: 'What an API token may do.',
  values: {
    COLLECTOR: { description: 'Submit changes to, pull and subscribe to its datasets (as its device, when it has one).' },
    REVIEWER: { description: 'Read everything in its datasets and resolve conflicts.' },
    ADMIN: { description: 'Everything: datasets, tokens, backlog flushes.' },
    // Each its own value (not the upper-case one's): a value two names shared would be answered
    // with whichever the sorted schema lists last, the lower-case one.
    collector: legacy('COLLECTOR'),
    reviewer: legacy('REVIEWER'),
    admin: legacy('ADMIN'),
  },
});

/** The core's role for either spelling a client sent. */
const roleOf = (name: keyof typeof ROLE_NAMES | (typeof ROLE_NAMES)[Role]): Role => name.toLowerCase() as Role;

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

/** Token lists are paged, and priced by their page. */
export const TOKENS_PAGE = 50;
export const MAX_TOKENS_PAGE = 500;

/** An entity's tokens are fewer: a page of entities multiplies them. */
export const SUBSET_TOKENS_PAGE = 20;
export const MAX_SUBSET_TOKENS_PAGE = 100;

/**
 * Token cursors are the plugin's encoding of (seq, id) ('DC:T:["N:<seq>","S:<uuid>"]'): the
 * creation number orders, the id makes it unique. A tampered one would reach SQL: refused here.
 * Entity.subsetTokens writes the same.
 */
function seqOfCursor(cursor: string | null | undefined): number | null {
  if (cursor == null) return null;
  const m = /^DC:T:\["N:(\d{1,15})","S:([0-9a-f-]{36})"\]$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!m || !isUuid(m[2]!)) throw new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });
  return Number(m[1]);
}

/** A subset as the API shows it: null for the whole datasets (no rules, or none left). */
const shown = (subset: Subset | null): Subset | null => (subset && subset.length > 0 ? subset : null);

export const ApiToken = builder.drizzleObject('apiTokens', {
  name: 'ApiToken',
  description: 'An API token. Its secret is shown once, when it is created, and never stored.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Its id (not the secret): what revokeApiToken and `npm run token -- revoke` take.' }),
    name: t.exposeString('name', { description: 'What it is for, for people ("Tablet 7, north site").' }),
    role: t.field({ type: RoleEnum, description: 'What it may do.', resolve: (row) => ROLE_NAMES[row.role] }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: 'The only device it may act as; null: any.' }),
    datasets: t.exposeStringList('datasets', { nullable: true, description: 'The datasets it may use; null: all.' }),
    subset: t.field({
      type: [SubsetRuleRef],
      nullable: true,
      description: 'The part of its datasets it sees: the entities matching every rule. Null: the whole datasets.',
      complexity: { field: 1, multiplier: SUBSET_LIMITS.maxRules },
      select: { columns: { subset: true } },
      resolve: (row) => shown(row.subset),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was made.' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'When it was revoked; null while it works.' }),
  }),
});

const NewApiToken = builder.objectRef<{ secret: string; token: typeof ApiToken.$inferType }>('NewApiToken').implement({
  description: 'A token just made, with its secret.',
  fields: (t) => ({
    secret: t.exposeString('secret', { description: 'Send as `Authorization: Bearer <secret>`. Shown only this once.' }),
    token: t.field({ type: ApiToken, description: 'The token as listed from now on.', resolve: (r) => r.token }),
  }),
});

const Viewer = builder.objectRef<Principal>('Viewer').implement({
  description: 'Who the request authenticated as.',
  fields: (t) => ({
    tokenId: t.exposeID('tokenId', { nullable: true, description: 'Null for configured anonymous access.' }),
    role: t.field({ type: RoleEnum, description: 'What the request may do.', resolve: (p) => ROLE_NAMES[p.role] }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: 'The only device it may act as; null: any.' }),
    datasets: t.field({ type: ['String'], nullable: true, description: 'The datasets it may use; null: all.', resolve: (p) => p.datasets }),
    subset: t.field({ type: [SubsetRuleRef], nullable: true, description: 'The part of its datasets it sees; null: the whole datasets.', complexity: { field: 1, multiplier: SUBSET_LIMITS.maxRules }, resolve: (p) => shown(p.subset) }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({ type: Viewer, description: 'Who this request authenticated as, and what it may do.', resolve: (_root, _args, ctx) => ctx.principal }),
  apiTokens: t.drizzleConnection({
    type: 'apiTokens',
    description: `Every token, revoked ones too, oldest first; paged with first/after or last/before (at most ${MAX_TOKENS_PAGE}, default ${TOKENS_PAGE}).`,
    authScopes: { admin: true },
    defaultSize: TOKENS_PAGE,
    maxSize: MAX_TOKENS_PAGE,
    complexity: connectionPrice(TOKENS_PAGE, MAX_TOKENS_PAGE),
    resolve: (query, _root, args, ctx) => {
      seqOfCursor(args.after);
      seqOfCursor(args.before);
      // In creation order, from the seq index: a page reads only its rows.
      return ctx.db.query.apiTokens.findMany(query({ orderBy: { seq: 'asc' } }));
    },
  },
  { description: 'A page of API tokens, oldest first.' },
  { description: 'One API token, with its cursor.' }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: NewApiToken,
    description: 'Makes an API token; its secret is in the answer, and only there. Admins only.',
    authScopes: { admin: true },
    errors: { dataField: { description: 'The token and its secret.' } },
    args: {
      name: t.arg.string({ required: true, description: 'What it is for, for people: 1-200 characters.' }),
      role: t.arg({ type: RoleEnum, required: true, description: 'What it may do. An ADMIN token takes neither deviceId nor datasets.' }),
      deviceId: t.arg.string({ description: 'Bind the token to one device.' }),
      datasets: t.arg.stringList({ description: 'Restrict the token to these datasets; absent: all.' }),
      subset: t.arg({
        type: [SubsetRuleInput],
        description: 'Only the entities of its datasets matching every rule (at most 8 rules, each on a property every one of its datasets declares). Collector tokens with datasets only; absent or empty: the whole datasets.',
      }),
    },
    resolve: async (_root, args, ctx) => {
      const made = await createToken(ctx.db, { ...args, role: roleOf(args.role) });
      ctx.observer.tokenCreated(made.token, ctx.principal.tokenId);
      return made;
    },
  }),
  setTokenSubset: t.field({
    type: ApiToken,
    description:
      "Reassigns a device: the token's subset changes at once, on every instance. Its next pull (from any cursor it holds) drops the entities that left the subset and gets those that entered it. An empty list: the whole datasets.",
    authScopes: { admin: true },
    errors: { dataField: { description: 'The token with its new subset.' } },
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
    errors: { dataField: { description: 'The token, revoked (when it was already, with the time of the first revocation).' } },
    args: { id: t.arg.id({ required: true, description: 'The token id (not its secret).' }) },
    resolve: async (_root, args, ctx) => {
      const { token, events } = await revokeToken(ctx.db, String(args.id));
      ctx.publish(events);
      return token;
    },
  }),
}));

const tokenCursor = (token: TokenRow): string => Buffer.from(`DC:T:${JSON.stringify([`N:${token.seq}`, `S:${token.id}`])}`).toString('base64');

const SubsetTokensConnection = builder.connectionObject(
  { type: ApiToken, name: 'EntitySubsetTokensConnection', description: 'A page of the tokens whose subset includes an entity, oldest first.' },
  { name: 'EntitySubsetTokensConnectionEdge', description: 'One token, with its cursor.' },
);

builder.drizzleObjectField(Entity, 'subsetTokens', (t) =>
  t.loadable({
    type: SubsetTokensConnection,
    description: `The API tokens (devices) whose subset includes this entity as it is now, oldest first; paged with first/after (at most ${MAX_SUBSET_TOKENS_PAGE}, default ${SUBSET_TOKENS_PAGE}). Tokens without a subset see every entity of their datasets and are not listed. Reviewers and admins only.`,
    authScopes: { reviewer: true },
    args: {
      first: t.arg.int({ description: `At most this many (1-${MAX_SUBSET_TOKENS_PAGE}, default ${SUBSET_TOKENS_PAGE}).` }),
      after: t.arg.string({ description: "Only the tokens after this cursor (a page's `endCursor`, or an edge's `cursor`)." }),
    },
    complexity: connectionPrice(SUBSET_TOKENS_PAGE, MAX_SUBSET_TOKENS_PAGE),
    // One statement for a whole page of entities.
    byPath: true,
    load: async (ids: string[], ctx, args) => {
      const pages = await subsetTokenPages(ctx.db, ids, { first: pageSize(args.first, SUBSET_TOKENS_PAGE, MAX_SUBSET_TOKENS_PAGE), after: seqOfCursor(args.after) });
      return pages.map(({ tokens, hasMore }) => ({
        edges: tokens.map((node) => ({ cursor: tokenCursor(node), node })),
        pageInfo: { hasNextPage: hasMore, hasPreviousPage: args.after != null, startCursor: tokens[0] ? tokenCursor(tokens[0]) : null, endCursor: tokens.at(-1) ? tokenCursor(tokens.at(-1)!) : null },
      }));
    },
    resolve: (e) => e.id,
  }),
);
