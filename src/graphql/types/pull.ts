import { DEFAULT_PULL, MAX_PULL, type JsonRow, type JsonShape, type PulledPage, type VersionColumn, type VersionRow } from '../../sync/changes-since.js';
import { builder } from '../builder.js';
import { columnsAt, plainRows } from '../plain-rows.js';
import { rawList, rawShapeAt } from '../raw-json.js';
import { reach } from '../reach.js';
import { EntityVersion } from './entities.js';

const LocalIdMapping = builder.objectRef<{ localId: string; entityId: string }>('LocalIdMapping').implement({
  description: "A device's local id and the entity UUID the server minted for it.",
  fields: (t) => ({
    localId: t.exposeString('localId', { description: 'The id the device gave the entity.' }),
    entityId: t.exposeID('entityId', { description: 'The UUID the server minted for it.' }),
  }),
});

type Page = PulledPage<Partial<VersionRow> | JsonRow>;

/** The page's rows as the executor takes them: plain rows, or JSON the database wrote (raw-json.ts). */
const rows = (list: Page['versions'], ctx: object, info: Parameters<typeof rawList>[1]) =>
  list.length > 0 && 'json' in list[0]! ? rawList(ctx, info, list as JsonRow[]) : plainRows(list as VersionRow[]);

const ChangesPageRef = builder.objectRef<Page>('ChangesPage').implement({
  description:
    "A page of a dataset since a cursor. For a token with a subset: the versions of entities in its share, the entities that entered it when its rules were set or changed (`entered`) and the ids of those that left it (`left`). Apply `versions` and `entered` (each a full state: keep an entity's highest version), then drop `left`.",
  fields: (t) => ({
    // changesSince multiplies by its limit already (below).
    versions: t.field({
      type: [EntityVersion],
      description: 'Versions in commit order. An entity that entered a subset by an edit comes as that version (a version holds the full state).',
      complexity: { field: 1, multiplier: 1 },
      // The page's rows, of the dataset changesSince was authorized for, read with the columns the
      // selection needs (changesSince below): plain rows, no per-row check or reload.
      ...reach('authorized-root'),
      resolve: (p, _args, ctx, info) => rows(p.versions, ctx, info),
    }),
    entered: t.field({
      type: [EntityVersion],
      description:
        "Entities that entered the token's subset because its rules were set (the token was made) or changed by an admin, each at its version when that happened: older than the cursor, so never among `versions` before. Empty for a token without a subset.",
      complexity: { field: 1, multiplier: 1 },
      // The share's rows, of the dataset changesSince was authorized for.
      ...reach('authorized-root'),
      resolve: (p, _args, ctx, info) => rows(p.entered, ctx, info),
    }),
    left: t.field({
      type: ['ID'],
      description: "Entities that left the token's subset (an edit moved them out, or an admin changed its rules): drop them, after applying this page's versions.",
      resolve: (p) => p.left,
    }),
    cursor: t.exposeString('cursor', { description: 'Opaque. Pass it back as `cursor`; unchanged when the page is empty.' }),
    hasMore: t.exposeBoolean('hasMore', { description: 'More versions are ready now: pull again at once.' }),
    // At most one per entity of the page: changesSince multiplies by its limit already.
    localIds: t.field({ type: [LocalIdMapping], description: "The calling device's local ids among this page's entities.", complexity: { field: 1, multiplier: 1 }, resolve: (p) => p.localIds }),
  }),
});

/** Where the page's rows are in a changesSince selection. */
const PAGE_ROWS = [['data', 'versions'], ['data', 'entered']] as const;

builder.queryFields((t) => ({
  changesSince: t.field({
    type: ChangesPageRef,
    errors: { dataField: { description: 'The page of versions, entered and left entities, and the cursor to continue from.' } },
    description:
      "What changed in a dataset since `cursor` (from the start when absent): its versions, or for a token with a subset its share and what moved in and out of it. Never skips a version committed late by a slow transaction; a cursor from before a reassignment keeps working.",
    args: {
      dataset: t.arg.string({ required: true, description: 'The dataset to pull.' }),
      cursor: t.arg.string({ description: 'The `cursor` of the last page pulled; absent: from the start.' }),
      limit: t.arg.int({ description: 'At most this many versions, entered and left entities together (1-1000, default 100).' }),
      deviceId: t.arg.string({ description: 'Whose local-id mappings to include.' }),
    },
    // Page size: at most `limit` versions under this field (a limit out of range is refused anyway).
    complexity: (args) => ({ field: 1, multiplier: Math.min(Math.max(args.limit ?? DEFAULT_PULL, 1), MAX_PULL) }),
    authScopes: (_root, args) => (args.deviceId == null ? { dataset: args.dataset } : { $all: { dataset: args.dataset, device: args.deviceId } }),
    // The page in one statement, with the columns its rows' selection reads; written as JSON by the
    // database when the rows select only stored columns (raw-json.ts).
    resolve: (_root, args, ctx, info) => {
      const shape = rawShapeAt(info, PAGE_ROWS, 'EntityVersion') as JsonShape | null;
      const opts = { ...args, tokenId: ctx.principal.tokenId };
      const columns = columnsAt(info, PAGE_ROWS, 'EntityVersion') as VersionColumn[];
      return ctx.readAhead.pull(ctx.db, opts, columns, shape);
    },
  }),
}));
