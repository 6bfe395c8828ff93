import { filter, pipe, Repeater } from 'graphql-yoga';
import type { Context } from '../context.js';
import { normalizeUuid } from '../../core/validate.js';
import type { EntityEvent } from '../../core/events.js';
import { builder } from '../builder.js';
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
        resolve: (query, e, _args, ctx) => ctx.db.query.entities.findFirst(query({ where: { id: e.entityId } })),
      }),
    }),
  });
}

const EntityChangedEvent = eventBase<EventOf<'entityChanged'>>('EntityChangedEvent', 'An entity got a new version.');
builder.objectField(EntityChangedEvent, 'version', (t) => t.exposeInt('version'));

const ConflictDetectedEvent = eventBase<EventOf<'conflictDetected'>>('ConflictDetectedEvent', 'A change was applied in conflict.');
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

const scope = (t: Parameters<Parameters<typeof builder.subscriptionFields>[0]>[0]) => ({
  dataset: t.arg.string({ required: true }),
  entityId: t.arg.id({ required: false, description: 'Only events of this entity.' }),
});
const matches =
  <E extends EntityEvent>(args: { dataset: string; entityId?: string | number | null }) =>
  (e: E): boolean =>
    e.datasetName === args.dataset && (args.entityId == null || e.entityId === normalizeUuid(args.entityId));

/**
 * Ends once the caller's token is revoked (on any instance) or the server begins to shut down.
 * A Repeater, not an async generator: a generator parked in an await ignores return() until its
 * next event, which would leak its subscription when the other side of the race ends first.
 */
function endOf(ctx: Context): Repeater<never> {
  return new Repeater<never>(async (_push, stop) => {
    if (ctx.closing.aborted) return stop();
    const onClosing = () => stop();
    ctx.closing.addEventListener('abort', onClosing, { once: true });
    const tokenId = ctx.principal.tokenId;
    const revoked = tokenId === null ? null : ctx.pubsub.subscribe('tokenRevoked');
    if (revoked) {
      void (async () => {
        for await (const e of revoked) if (e.tokenId === tokenId) return stop();
      })();
    }
    await stop;
    ctx.closing.removeEventListener('abort', onClosing);
    await revoked?.return?.();
  });
}

/** The matching events of one type, over WebSocket or SSE alike, until the token is revoked or the server stops. */
function events<T extends EntityEvent['type']>(ctx: Context, type: T, args: { dataset: string; entityId?: string | number | null }) {
  const source = pipe(ctx.pubsub.subscribe(type) as AsyncIterable<EventOf<T>>, filter(matches<EventOf<T>>(args)));
  // The race ends (and unsubscribes both) as soon as either ends.
  return Repeater.race([source, endOf(ctx)]);
}

builder.subscriptionFields((t) => ({
  entityChanged: t.field({
    type: EntityChangedEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'entityChanged', args),
    resolve: (e) => e,
  }),
  conflictDetected: t.field({
    type: ConflictDetectedEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'conflictDetected', args),
    resolve: (e) => e,
  }),
  changeHeld: t.field({
    type: ChangeHeldEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'changeHeld', args),
    resolve: (e) => e,
  }),
  backlogFlushed: t.field({
    type: BacklogFlushedEvent,
    args: scope(t),
    authScopes: (_root, args) => ({ dataset: args.dataset }),
    subscribe: (_root, args, ctx) => events(ctx, 'backlogFlushed', args),
    resolve: (e) => e,
  }),
}));
