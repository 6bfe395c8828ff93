import { GraphQLError } from 'graphql';
import { MAX_ACTIVITY_DAYS, type DailyActivity } from '../../core/activity.js';
import { MAX_DETAIL_VERSIONS, type ConflictDetail, type PropertyValueAt } from '../../core/conflict-details.js';
import { connectionPrice, IN_ROW, pageSize } from '../pricing.js';
import { ENTITIES_PAGE, MAX_ENTITIES_PAGE } from './entities.js';
import { runStep } from '../../core/review.js';
import { datasetActivity } from '../../sync/activity.js';
import { conflictDetailsOf } from '../../sync/conflict-details.js';
import { datasetDevices, DEVICES_PAGE, MAX_DEVICES_PAGE, type DeviceActivity } from '../../sync/devices.js';
import { builder } from '../builder.js';
import { knownDataset } from '../known-dataset.js';
import { HeldChange } from './branches.js';
import { Dataset } from './datasets.js';
import { Entity } from './entities.js';
import { VersionSourceEnum } from './enums.js';

/** What the reviewer's dashboard reads beyond the sync API: competing values, refused changes, devices, daily series, run steps. */

const invalidCursor = (cursor: string) => new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });

/* ---- The competing values of an open conflict ---- */

const PropertyValueAtRef = builder.objectRef<PropertyValueAt>('PropertyValueAt').implement({
  description: 'One value of a property, and the version, device and time it comes from.',
  fields: (t) => ({
    value: t.expose('value', { type: 'JSON', nullable: true, description: 'The value (null: unset).' }),
    version: t.exposeInt('version', { description: 'The version that wrote it; for `before`, the version the author saw.' }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: "That version's device; null for a reviewer's version or a change sent without one." }),
    source: t.expose('source', { type: VersionSourceEnum, description: 'How that version came to be.' }),
    at: t.expose('at', { type: 'DateTime', description: 'When that version was made.' }),
    conflicting: t.exposeBoolean('conflicting', { description: "This write is one of the open conflict's versions on this property: an author's value the conflict is about." }),
  }),
});

const ConflictDetailRef = builder.objectRef<ConflictDetail>('ConflictDetail').implement({
  description: 'One property of an open HARD conflict and the values that compete for it: what a reviewer chooses between.',
  fields: (t) => ({
    property: t.exposeString('property', { description: 'The property (`label` for the label).' }),
    now: t.field({ type: PropertyValueAtRef, description: 'The value now, from the last write of it.', resolve: (d) => d.now }),
    before: t.field({
      type: PropertyValueAtRef,
      nullable: true,
      description: 'The value before the conflict: what the first conflicting author saw (null when the author saw nothing of the entity, a run that began with an offline create).',
      resolve: (d) => d.before,
    }),
    writes: t.field({
      type: [PropertyValueAtRef],
      description: `Every write of the property since then, oldest first: the other side's values and the authors' (\`conflicting\`). Drawn from the newest ${MAX_DETAIL_VERSIONS} versions.`,
      // Drawn from the versions loaded once for the entity (at most that many rows): priced as them.
      complexity: IN_ROW,
      resolve: (d) => d.writes,
    }),
  }),
});

builder.drizzleObjectField(Entity, 'conflictDetails', (t) =>
  t.loadableList({
    type: ConflictDetailRef,
    description: 'Per property of its open HARD conflicts (sorted): the value now, the value before the conflict and every competing write, each with its device and time. Empty without one (SOFT conflicts name no property). Reviewers and admins only.',
    authScopes: { reviewer: true },
    // One per property of the dataset (and the label) at most.
    complexity: (_args, ctx) => ({ field: 1, multiplier: ctx.limits.maxProperties + 1 }),
    load: (ids: string[], ctx) => conflictDetailsOf(ctx.db, ids),
    resolve: (e) => e.id,
  }),
);

/* ---- What the change log refused ---- */

/** Refused-change cursors are the plugin's encoding of the receipt number ("DC:N:<n>"); a tampered one would reach SQL. */
function checkReceiptCursor(cursor: string | null | undefined): void {
  if (cursor != null && !/^DC:N:\d{1,15}$/.test(Buffer.from(cursor, 'base64').toString('utf8'))) throw invalidCursor(cursor);
}

builder.queryFields((t) => ({
  rejectedChanges: t.drizzleConnection({
    type: 'changes',
    description:
      'What the change log refused in a dataset, newest received first, with its code, message, device and the payload as sent (normalised; an oversized one truncated); paged with first/after. Reviewers and admins of the dataset; UNKNOWN_DATASET for a dataset that does not exist.',
    args: {
      dataset: t.arg.string({ required: true, description: 'The dataset the changes named.' }),
      deviceId: t.arg.string({ required: false, description: "Only this device's." }),
    },
    complexity: connectionPrice(ENTITIES_PAGE, MAX_ENTITIES_PAGE),
    authScopes: (_root, args) => ({ $all: { reviewer: true, dataset: args.dataset } }),
    resolve: async (query, _root, args, ctx) => {
      checkReceiptCursor(args.after);
      checkReceiptCursor(args.before);
      await knownDataset(ctx, args.dataset);
      return ctx.db.query.changes.findMany(
        query({ where: { datasetName: args.dataset, outcome: 'REJECTED', ...(args.deviceId != null ? { deviceId: args.deviceId } : {}) }, orderBy: { receiptId: 'desc' } }),
      );
    },
  },
  { description: 'A page of refused changes, newest received first.' },
  { description: 'One refused change, with its cursor.' }),
}));

/* ---- Devices and daily series, per dataset ---- */

const DeviceActivityRef = builder.objectRef<DeviceActivity>('DeviceActivity').implement({
  description: 'What a dataset knows of one device.',
  fields: (t) => ({
    deviceId: t.exposeString('deviceId', { description: 'The device id its changes and pulls named.' }),
    lastChangeAt: t.expose('lastChangeAt', { type: 'DateTime', nullable: true, description: 'When its newest change to the dataset was received, whatever became of it; null if it never sent one.' }),
    heldChanges: t.exposeInt('heldChanges', { description: 'Its changes waiting in the backlog now.' }),
    rejectedLastDay: t.exposeInt('rejectedLastDay', { description: 'Its changes the service refused in the last 24 hours.' }),
    lastPullAt: t.expose('lastPullAt', { type: 'DateTime', nullable: true, description: 'When it last pulled the dataset (changesSince with its deviceId), to the minute; null if never.' }),
  }),
});

const DevicePageRef = builder.objectRef<{ devices: DeviceActivity[]; hasMore: boolean }>('DevicePage').implement({
  description: 'A page of devices, by device id.',
  fields: (t) => ({
    // Priced by `devices(first)` above it.
    nodes: t.field({ type: [DeviceActivityRef], description: 'The devices of this page.', complexity: { field: 1, multiplier: 1 }, resolve: (p) => p.devices }),
    endCursor: t.string({ nullable: true, description: 'Pass as `after` for the next page; null when the page is empty.', resolve: (p) => (p.devices.length ? Buffer.from(p.devices.at(-1)!.deviceId).toString('base64url') : null) }),
    hasNextPage: t.exposeBoolean('hasMore', { description: 'More devices follow.' }),
  }),
});

const DailyActivityRef = builder.objectRef<DailyActivity>('DailyActivity').implement({
  description: "One UTC day of a dataset's activity.",
  fields: (t) => ({
    day: t.exposeString('day', { description: 'The UTC day, YYYY-MM-DD.' }),
    conflictsOpened: t.exposeInt('conflictsOpened', { description: 'Versions applied in conflict that day (SOFT or HARD).' }),
    conflictsResolved: t.exposeInt('conflictsResolved', { description: 'Conflicting versions reviewers marked resolved that day.' }),
    backlog: t.exposeInt('backlog', {
      description: 'Changes held in the backlog at the end of the day (today: now). Counted from the held changes and the versions released or forced from them; a held change later refused is not counted.',
    }),
  }),
});

builder.drizzleObjectFields(Dataset, (t) => ({
  devices: t.field({
    type: DevicePageRef,
    description: `The devices that sent this dataset a change or pulled it, by id: at most \`first\` (1-${MAX_DEVICES_PAGE}, default ${DEVICES_PAGE}) after \`after\`. Reviewers and admins.`,
    authScopes: { reviewer: true },
    args: {
      first: t.arg.int({ description: `At most this many (1-${MAX_DEVICES_PAGE}, default ${DEVICES_PAGE}).` }),
      after: t.arg.string({ description: 'The endCursor of the page before.' }),
    },
    complexity: (args) => ({ field: 1, multiplier: pageSize(args.first, DEVICES_PAGE, MAX_DEVICES_PAGE) }),
    select: { columns: { name: true } },
    resolve: (d, args, ctx) => {
      let after: string | null = null;
      if (args.after != null) {
        after = Buffer.from(args.after, 'base64url').toString('utf8');
        if (Buffer.from(after).toString('base64url') !== args.after || after.length > 200) throw invalidCursor(args.after);
      }
      return datasetDevices(ctx.db, d.name, { after, first: Math.min(Math.max(args.first ?? DEVICES_PAGE, 1), MAX_DEVICES_PAGE) });
    },
  }),
  activity: t.field({
    type: [DailyActivityRef],
    description: `Per UTC day, oldest first, over the last \`days\` days (1-${MAX_ACTIVITY_DAYS}, default 30; today included): conflicts opened, conflicts resolved and the backlog size. Reviewers and admins.`,
    authScopes: { reviewer: true },
    args: { days: t.arg.int({ description: `How many days, today included (1-${MAX_ACTIVITY_DAYS}, default 30).` }) },
    complexity: (args) => ({ field: 1, multiplier: pageSize(args.days, 30, MAX_ACTIVITY_DAYS) }),
    select: { columns: { id: true, name: true } },
    resolve: (d, args, ctx) => datasetActivity(ctx.db, d, Math.min(Math.max(args.days ?? 30, 1), MAX_ACTIVITY_DAYS)),
  }),
}));

/* ---- A held change's place in its run, as people count ---- */

builder.drizzleObjectFields(HeldChange, (t) => ({
  step: t.int({
    description: "Its step in its run, counted from 1: the run's first change (an offline create, or the change made on the trunk version) is step 1.",
    select: { columns: { baseVersion: true, trunkVersion: true } },
    resolve: (h) => runStep(h.baseVersion, h.trunkVersion),
  }),
  waitsForStep: t.int({
    description: 'The step before it, which has not arrived (or not been applied) yet.',
    select: { columns: { waitsFor: true, trunkVersion: true } },
    resolve: (h) => runStep(h.waitsFor, h.trunkVersion),
  }),
}));
