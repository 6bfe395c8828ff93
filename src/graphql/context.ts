import type { Limits } from '../core/types.js';
import type { Db } from '../db/client.js';
import type { SyncEvent } from '../sync/events.js';
import type { EventBus } from './pubsub.js';

/** Everything a resolver may use. The database comes from here, never from a module import. */
export interface Context {
  db: Db;
  limits: Limits;
  /** How long a change is held before the flush forces it. */
  holdTimeoutSeconds: number;
  /** Publishes events; call only after the use-case's transaction committed. */
  publish: (events: readonly SyncEvent[]) => void;
  /** Where subscriptions listen. */
  pubsub: EventBus['pubsub'];
}
