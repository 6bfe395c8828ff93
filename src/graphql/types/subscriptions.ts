import { GraphQLError } from 'graphql';
import type { Context } from '../context.js';
import { SubscriptionEnd } from '../pubsub.js';
import { normalizeUuid } from '../../core/validate.js';
import type { EntityEvent } from '../../core/events.js';
import { builder } from '../builder.js';
import { inShare, type Delivered } from '../subset-events.js';
import { inSubsetWhere } from '../subset-filter.js';
import { ConflictTypeEnum } from './enums.js';

type EventOf<T extends EntityEvent['type']> = Extract<EntityEvent, { type: T }>;

const FlushReasonEnum = builder.enumType('FlushReason', {
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
      dataset: t.string({ resolve: (e) => e.datasetName }),
      entityId: t.id({ resolve: (e) => e.entityId }),
      entity: t.drizzleField({
        type: 'entities',
        nullable: true,
        description: 'The entity as it is when the event is read (later versions may have landed since).',
        resolve: (query, e, _args, ctx) => ctx.db.query.entities.findFirst(query({ where: { id: e.entityId, ...inSubsetWhere(ctx) } })),
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
      resolve: (query, e, _args, ctx) => ctx.db.query.entityVersions.findFirst(query({ where: { entityId: e.entityId, version: e.version, ...inSubsetWhere(ctx) } })),
    }),
  );
}

const EntityChangedEvent = eventBase<Delivered<EventOf<'entityChanged'>>>('EntityChangedEvent', 'An entity got a new version.');
builder.objectField(EntityChangedEvent, 'version', (t) => t.exposeInt('version'));
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
  version: t.exposeInt('version'),
  type: t.field({ type: ConflictTypeEnum, resolve: (e) => e.conflict }),
  conflictingProperties: t.exposeStringList('conflictingProperties'),
}));

const ChangeHeldEvent = eventBase<EventOf<'changeHeld'>>('ChangeHeldEvent', 'A change went into the backlog to wait for its predecessor.');
builder.objectFields(ChangeHeldEvent, (t) => ({
  changeId: t.exposeString('changeId'),
  branchId: t.exposeID('branchId'),
  waitsFor: t.exposeInt('waitsFor', { description: 'The client baseVersion of the predecessor it waits for.' }),
  heldChange: t.drizzleField({
    type: 'heldChanges',
    nullable: true,
    description: 'The held change, while it is still held; null for collectors (it is a device\'s whole payload).',
    authScopes: { reviewer: true },
    unauthorizedResolver: () => null,
    resolve: (query, e, _args, ctx) => ctx.db.query.heldChanges.findFirst(query({ where: { changeId: e.changeId } })),
  }),
}));

const FlushedChange = builder.objectRef<{ changeId: string; version: number }>('FlushedChange').implement({
  fields: (t) => ({ changeId: t.exposeString('changeId'), version: t.exposeInt('version') }),
});
const BacklogFlushedEvent = eventBase<EventOf<'backlogFlushed'>>('BacklogFlushedEvent', 'Held changes were applied.');
builder.objectFields(BacklogFlushedEvent, (t) => ({
  reason: t.field({ type: FlushReasonEnum, resolve: (e) => e.reason }),
  changes: t.field({ type: [FlushedChange], description: 'In the order applied, with the versions made.', resolve: (e) => e.changes }),
}));

const ConflictResolvedEvent = eventBase<EventOf<'conflictResolved'>>('ConflictResolvedEvent', "A reviewer resolved an entity's conflict.");
builder.objectField(ConflictResolvedEvent, 'version', (t) => t.exposeInt('version', { description: 'The version the entity was at when its conflict was resolved.' }));

const scope = (t: Parameters<Parameters<typeof builder.subscriptionFields>[0]>[0]) => ({
  dataset: t.arg.string({ required: true }),
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
 */
function events<T extends EntityEvent['type']>(ctx: Context, type: T, args: { dataset: string; entityId?: string | number | null }) {
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
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'entityChanged', args),
    resolve: eventOrEnd,
  }),
  conflictDetected: t.field({
    type: ConflictDetectedEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'conflictDetected', args),
    resolve: eventOrEnd,
  }),
  changeHeld: t.field({
    type: ChangeHeldEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'changeHeld', args),
    resolve: eventOrEnd,
  }),
  backlogFlushed: t.field({
    type: BacklogFlushedEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'backlogFlushed', args),
    resolve: eventOrEnd,
  }),
  conflictResolved: t.field({
    type: ConflictResolvedEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'conflictResolved', args),
    resolve: eventOrEnd,
  }),
}));
