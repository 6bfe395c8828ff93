import { GraphQLError } from 'graphql';
import type { Context } from '../context.js';
import { SubscriptionEnd } from '../pubsub.js';
import { normalizeUuid } from '../../core/validate.js';
import type { EntityEvent } from '../../core/events.js';
import { maySeeRunOf } from '../../core/auth.js';
import { builder } from '../builder.js';
import { IN_HAND } from '../pricing.js';
import { knownDataset } from '../known-dataset.js';
import { entityFrom, reach, versionFrom } from '../reach.js';
import { inShare, type Delivered } from '../subset-events.js';
import { ConflictTypeEnum } from './enums.js';

type EventOf<T extends EntityEvent['type']> = Extract<EntityEvent, { type: T }>;

const FlushReasonEnum = builder.enumType('FlushReason', {
  description: 'Why held changes were applied.',
  values: {
    RELEASED: { description: 'Their predecessor arrived.' },
    FORCED: { description: 'Held longer than the hold timeout, or flushed by an administrator.' },
  },
});

/** Fields every event shares; the entity is reloaded through the graph (events carry ids). */
function eventBase<T extends EntityEvent>(name: string, description: string) {
  return builder.objectRef<T>(name).implement({
    description,
    fields: (t) => ({
      dataset: t.string({ description: 'The dataset of the entity.', resolve: (e) => e.datasetName }),
      entityId: t.id({ description: 'The entity the event is about.', resolve: (e) => e.entityId }),
      entity: t.drizzleField({
        type: 'entities',
        nullable: true,
        description:
          "The entity as it is when the event is read (later versions may have landed since); null when it does not exist, or is not the event's dataset's (a change held in this dataset may name an entity of another).",
        ...reach('from-parent'),
        resolve: (query, e, _args, ctx) => entityFrom(ctx, query, e.datasetName, e.entityId),
      }),
    }),
  });
}

/**
 * The version an event announces, as it was made: `entity` is the entity as it is by the time the
 * event is read (later versions may have landed meanwhile), this is the one the event is about.
 */
function announcedVersion<T extends EventOf<'entityChanged' | 'conflictDetected'>>(ref: ReturnType<typeof eventBase<T>>) {
  builder.objectField(ref, 'entityVersion', (t) =>
    t.drizzleField({
      type: 'entityVersions',
      nullable: true,
      description: 'The version this event announces, as it was made (not the entity as it is now: see `entity`).',
      ...reach('from-parent'),
      resolve: (query, e, _args, ctx) => versionFrom(ctx, query, e.datasetName, e.entityId, e.version),
    }),
  );
}

const EntityChangedEvent = eventBase<Delivered<EventOf<'entityChanged'>>>('EntityChangedEvent', 'An entity got a new version.');
builder.objectField(EntityChangedEvent, 'version', (t) => t.exposeInt('version', { description: 'The version made.' }));
builder.objectField(EntityChangedEvent, 'leftSubset', (t) =>
  t.boolean({
    description: "True when this change took the entity out of the subscriber's subset (its `entity` and `entityVersion` are then null): drop it. Always false without a subset.",
    resolve: (e) => e.leftSubset === true,
  }),
);
announcedVersion(EntityChangedEvent);

const ConflictDetectedEvent = eventBase<EventOf<'conflictDetected'>>('ConflictDetectedEvent', 'A change was applied in conflict.');
announcedVersion(ConflictDetectedEvent);
builder.objectFields(ConflictDetectedEvent, (t) => ({
  version: t.exposeInt('version', { description: 'The version applied in conflict.' }),
  type: t.field({ type: ConflictTypeEnum, description: 'SOFT or HARD.', resolve: (e) => e.conflict }),
  conflictingProperties: t.exposeStringList('conflictingProperties', { description: 'For HARD: the properties both sides set.' }),
}));

const ChangeHeldEvent = eventBase<EventOf<'changeHeld'>>('ChangeHeldEvent', 'A change went into the backlog to wait for its predecessor.');
builder.objectFields(ChangeHeldEvent, (t) => ({
  changeId: t.exposeString('changeId', { description: 'The held change.' }),
  branchId: t.id({
    nullable: true,
    description: "The offline run it belongs to: for reviewers, admins and the run's own device (null for another device's collector, so no device learns another's run ids).",
    resolve: (e, _args, ctx) => (maySeeRunOf(ctx.principal, e.deviceId) ? e.branchId : null),
  }),
  waitsFor: t.exposeInt('waitsFor', { description: 'The client baseVersion of the predecessor it waits for.' }),
  heldChange: t.drizzleField({
    type: 'heldChanges',
    nullable: true,
    description: 'The held change, while it is still held; null for collectors (it is a device\'s whole payload).',
    authScopes: { reviewer: true },
    unauthorizedResolver: () => null,
    ...reach('from-parent'),
    resolve: (query, e, _args, ctx) => ctx.db.query.heldChanges.findFirst(query({ where: { changeId: e.changeId, datasetName: e.datasetName } })),
  }),
}));

const FlushedChange = builder.objectRef<{ changeId: string; version: number }>('FlushedChange').implement({
  description: 'A held change that was applied, and the version it made.',
  fields: (t) => ({
    changeId: t.exposeString('changeId', { description: 'The change.', complexity: IN_HAND }),
    version: t.exposeInt('version', { description: 'The version it made.', complexity: IN_HAND }),
  }),
});
const BacklogFlushedEvent = eventBase<EventOf<'backlogFlushed'>>('BacklogFlushedEvent', 'Held changes were applied.');
builder.objectFields(BacklogFlushedEvent, (t) => ({
  reason: t.field({ type: FlushReasonEnum, description: 'Released by their predecessor, or forced.', resolve: (e) => e.reason }),
  // One event is about one run's entity: at most maxRunLength changes.
  changes: t.field({ type: [FlushedChange], description: 'In the order applied, with the versions made.', complexity: (_args, ctx) => ({ field: 1, multiplier: ctx.limits.maxRunLength }), resolve: (e) => e.changes }),
}));

const ConflictResolvedEvent = eventBase<EventOf<'conflictResolved'>>('ConflictResolvedEvent', "A reviewer resolved an entity's conflict.");
builder.objectFields(ConflictResolvedEvent, (t) => ({
  version: t.exposeInt('version', { description: "The entity's version once its conflict was resolved (the reviewer's new version, when it wrote one)." }),
  resolution: t.drizzleField({
    type: 'resolutions',
    nullable: true,
    description: 'The verdict: who, why, at which version, the version it wrote; null for collectors.',
    authScopes: { reviewer: true },
    unauthorizedResolver: () => null,
    resolve: (query, e, _args, ctx) => (e.resolutionId == null ? null : ctx.db.query.resolutions.findFirst(query({ where: { id: e.resolutionId } }))),
  }),
}));

const scope = (t: Parameters<Parameters<typeof builder.subscriptionFields>[0]>[0]) => ({
  dataset: t.arg.string({ required: true, description: 'The dataset whose events to receive.' }),
  entityId: t.arg.id({ required: false, description: 'Only events of this entity.' }),
});
const matches =
  <E extends EntityEvent>(args: { dataset: string; entityId?: string | number | null }) =>
  (e: E): boolean =>
    e.datasetName === args.dataset && (args.entityId == null || e.entityId === normalizeUuid(args.entityId));

const tokenRevoked = () =>
  new GraphQLError('the API token of this subscription was revoked: it has ended, and a new one needs another token', {
    extensions: { code: 'TOKEN_REVOKED' },
  });

/**
 * The matching events of one type, over WebSocket or SSE alike, until the server shuts down (the
 * stream completes) or the caller's token is revoked on any instance (a last TOKEN_REVOKED error,
 * then the end). One AbortSignal ends it. Its watches begin when the subscription starts and
 * end with it, for whatever reason it ends (the client left, too slow), so none outlives it.
 * UNKNOWN_DATASET for a dataset that does not exist.
 */
async function events<T extends EntityEvent['type']>(ctx: Context, type: T, args: { dataset: string; entityId?: string | number | null }) {
  // After the auth scopes (a restricted token is FORBIDDEN first): a typo is an error, not a silent stream.
  await knownDataset(ctx, args.dataset);
  const ended = new AbortController();
  const watch = () => {
    if (ctx.closing.aborted) return ended.abort();
    ctx.closing.addEventListener('abort', () => ended.abort(), { once: true, signal: ended.signal });
    const tokenId = ctx.principal.tokenId;
    if (tokenId === null) return;
    const revoked = ctx.pubsub.subscribe('tokenRevoked', { signal: ended.signal, filter: (e) => e.tokenId === tokenId });
    void revoked.next().then((r) => {
      if (!r.done) ended.abort(new SubscriptionEnd(tokenRevoked()));
      // One revocation is all it waits for.
      void revoked.return();
    });
  };
  const source = ctx.pubsub.subscribe(type, { signal: ended.signal, filter: matches<EventOf<T>>(args), onStart: watch, onEnd: () => ended.abort() });
  // A token with a subset hears only of its share (DESIGN "Subsets").
  return inShare(ctx, source, ended.signal);
}

/** Each event as it is, or the reason the subscription ends (thrown, so the client gets it as an error). */
function eventOrEnd<E>(e: E | SubscriptionEnd): E {
  if (e instanceof SubscriptionEnd) throw e.error;
  return e;
}

builder.subscriptionFields((t) => ({
  entityChanged: t.field({
    type: EntityChangedEvent,
    description: 'Each new version of an entity of the dataset, after it is committed.',
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'entityChanged', args),
    resolve: eventOrEnd,
  }),
  conflictDetected: t.field({
    type: ConflictDetectedEvent,
    description: 'Each change of the dataset applied in conflict (SOFT or HARD).',
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'conflictDetected', args),
    resolve: eventOrEnd,
  }),
  changeHeld: t.field({
    type: ChangeHeldEvent,
    description: 'Each change of the dataset that went into the backlog to wait for its predecessor.',
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'changeHeld', args),
    resolve: eventOrEnd,
  }),
  backlogFlushed: t.field({
    type: BacklogFlushedEvent,
    description: 'Held changes of the dataset applied, released by their predecessor or forced; each event is about one entity.',
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'backlogFlushed', args),
    resolve: eventOrEnd,
  }),
  conflictResolved: t.field({
    type: ConflictResolvedEvent,
    description: "Each entity of the dataset whose conflict a reviewer resolved (dashboards drop it from their inbox).",
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'conflictResolved', args),
    resolve: eventOrEnd,
  }),
}));
