import { createPubSub } from 'graphql-yoga';
import type { SyncEvent } from '../sync/events.js';

type EventOf<T extends SyncEvent['type']> = Extract<SyncEvent, { type: T }>;

/** Topics carry ids; subscribers reload the rest through the graph. */
export function createEventBus() {
  return createPubSub<{
    entityChanged: [EventOf<'entityChanged'>];
    conflictDetected: [EventOf<'conflictDetected'>];
  }>();
}
export type EventBus = ReturnType<typeof createEventBus>;

export function publishEvents(bus: EventBus, events: readonly SyncEvent[]): void {
  for (const e of events) {
    switch (e.type) {
      case 'entityChanged':
        bus.publish('entityChanged', e);
        break;
      case 'conflictDetected':
        bus.publish('conflictDetected', e);
        break;
    }
  }
}
