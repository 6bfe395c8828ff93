import { changesSince, DEFAULT_PULL, MAX_PULL, type ChangesPage } from '../../sync/changes-since.js';
import { builder } from '../builder.js';
import { reach } from '../reach.js';
import { EntityVersion } from './entities.js';

const LocalIdMapping = builder.objectRef<{ localId: string; entityId: string }>('LocalIdMapping').implement({
  description: "A device's local id and the entity UUID the server minted for it.",
  fields: (t) => ({
    localId: t.exposeString('localId', { description: 'The id the device gave the entity.' }),
    entityId: t.exposeID('entityId', { description: 'The UUID the server minted for it.' }),
  }),
});

const ChangesPageRef = builder.objectRef<ChangesPage>('ChangesPage').implement({
  description: 'A page of versions in commit order, with the cursor to continue from.',
  fields: (t) => ({
    // changesSince multiplies by its limit already (below).
    versions: t.drizzleField({
      type: [EntityVersion],
      description: 'The versions of this page, in commit order.',
      complexity: { field: 1, multiplier: 1 },
      // The page's rows, of the dataset changesSince was authorized for.
      ...reach('authorized-root'),
      // The page's rows again, as the selection plans them (the entity joined only when asked):
      // rows the plugin did not plan would each be reloaded field by field, several times slower.
      resolve: (query, p, _args, ctx) =>
        p.versions.length === 0 ? [] : ctx.db.query.entityVersions.findMany(query({ where: { seq: { in: p.versions.map((v) => v.seq) } }, orderBy: { txid: 'asc', seq: 'asc' } })),
    }),
    cursor: t.exposeString('cursor', { description: 'Opaque. Pass it back as `cursor`; unchanged when the page is empty.' }),
    hasMore: t.exposeBoolean('hasMore', { description: 'More versions are ready now: pull again at once.' }),
    localIds: t.field({ type: [LocalIdMapping], description: "The calling device's local ids among this page's entities.", resolve: (p) => p.localIds }),
  }),
});

builder.queryFields((t) => ({
  changesSince: t.field({
    type: ChangesPageRef,
    errors: { dataField: { description: 'The page of versions and the cursor to continue from.' } },
    description: 'Versions of a dataset committed since `cursor` (from the start when absent). Never skips a version committed late by a slow transaction.',
    args: {
      dataset: t.arg.string({ required: true, description: 'The dataset to pull.' }),
      cursor: t.arg.string({ description: 'The `cursor` of the last page pulled; absent: from the start.' }),
      limit: t.arg.int({ description: 'At most this many versions (1-1000, default 100).' }),
      deviceId: t.arg.string({ description: 'Whose local-id mappings to include.' }),
    },
    // Page size: at most `limit` versions under this field (a limit out of range is refused anyway).
    complexity: (args) => ({ field: 1, multiplier: Math.min(Math.max(args.limit ?? DEFAULT_PULL, 1), MAX_PULL) }),
    authScopes: (_root, args) => (args.deviceId == null ? { dataset: args.dataset } : { $all: { dataset: args.dataset, device: args.deviceId } }),
    resolve: (_root, args, ctx) => changesSince(ctx.db, args),
  }),
}));
