import { filter, pipe } from 'graphql-yoga';
import type { SyncEvent } from '../../sync/events.js';
import { builder } from '../builder.js';
import { ConflictTypeEnum } from './enums.js';

type EventOf<T extends SyncEvent['type']> = Extract<SyncEvent, { type: T }>;

const FlushReasonEnum = builder.enumType('FlushReason', {
  values: {
    RELEASED: { description: 'Their predecessor arrived.' },
    FORCED: { description: 'Held longer than the hold timeout, or flushed by an administrator.' },
  },
});

/** Fields every event shares; the entity is reloaded through the graph (events carry ids). */
function eventBase<T extends SyncEvent>(name: string, description: string) {
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
    description: 'The held change, while it is still held.',
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
  <E extends SyncEvent>(args: { dataset: string; entityId?: string | number | null }) =>
  (e: E): boolean =>
    e.datasetName === args.dataset && (args.entityId == null || e.entityId === String(args.entityId).toLowerCase());

builder.subscriptionFields((t) => ({
  entityChanged: t.field({
    type: EntityChangedEvent,
    args: scope(t),
    subscribe: (_root, args, ctx) => pipe(ctx.pubsub.subscribe('entityChanged'), filter(matches<EventOf<'entityChanged'>>(args))),
    resolve: (e) => e,
  }),
  conflictDetected: t.field({
    type: ConflictDetectedEvent,
    args: scope(t),
    subscribe: (_root, args, ctx) => pipe(ctx.pubsub.subscribe('conflictDetected'), filter(matches<EventOf<'conflictDetected'>>(args))),
    resolve: (e) => e,
  }),
  changeHeld: t.field({
    type: ChangeHeldEvent,
    args: scope(t),
    subscribe: (_root, args, ctx) => pipe(ctx.pubsub.subscribe('changeHeld'), filter(matches<EventOf<'changeHeld'>>(args))),
    resolve: (e) => e,
  }),
  backlogFlushed: t.field({
    type: BacklogFlushedEvent,
    args: scope(t),
    subscribe: (_root, args, ctx) => pipe(ctx.pubsub.subscribe('backlogFlushed'), filter(matches<EventOf<'backlogFlushed'>>(args))),
    resolve: (e) => e,
  }),
}));
