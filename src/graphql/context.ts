import type { Principal } from '../core/auth.js';
import type { Limits } from '../core/types.js';
import type { Db } from '../db/client.js';
import type { SyncEvent } from '../core/events.js';
import type { ChangeResult } from '../core/results.js';
import type { FlushResult } from '../sync/flush-backlog.js';
import type { ReadAhead } from '../sync/read-ahead.js';
import type { EventBus } from './pubsub.js';

/** Everything a resolver may use. The database comes from here, never from a module import. */
export interface Context {
  db: Db;
  /** Who is asking: the request's API token, or the configured anonymous role. */
  principal: Principal;
  limits: Limits;
  /** How long a change is held before the flush forces it. */
  holdTimeoutSeconds: number;
  /** Pulls go through it: the next page is read while this one is sent. */
  readAhead: ReadAhead;
  /**
   * Publishes events; call only after the use-case's transaction committed. `outboxed`: whether
   * the use-case wrote webhook outbox rows, when it knows (absent: any webhook event may have).
   */
  publish: (events: readonly SyncEvent[], outboxed?: boolean) => void;
  /** Where subscriptions listen. */
  pubsub: EventBus['pubsub'];
  /** Aborted when the server begins to shut down: live subscriptions end with it. */
  closing: AbortSignal;
  /** Told what this instance processed, for its metrics (src/server/metrics.ts); absent where nothing counts. */
  observer: SyncObserver;
}

/** What resolvers report after their use-case committed; the metrics count it and the logs say it. */
export interface SyncObserver {
  /** A submitted batch's results, one per change. */
  submitted(results: readonly ChangeResult[]): void;
  /** The flushBacklog mutation ran: what it forced, and its events. */
  flushed(result: FlushResult): void;
  /** An admin (`by`: its token id, null for anonymous access) made an API token. */
  tokenCreated(token: { id: string; role: string }, by: string | null): void;
}
