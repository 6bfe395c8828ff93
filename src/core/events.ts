import type { ConflictType, ErrorCode } from './types.js';

/**
 * What a use-case reports for publishing after its transaction commits. Events carry ids;
 * subscribers load the rest through the graph.
 */
export type SyncEvent =
  | { type: 'entityChanged'; datasetName: string; entityId: string; version: number }
  | {
      type: 'conflictDetected';
      datasetName: string;
      entityId: string;
      version: number;
      conflict: ConflictType;
      conflictingProperties: string[];
    }
  /** `deviceId`: the run's device, so only it (and reviewers) are told the run's id. */
  | { type: 'changeHeld'; datasetName: string; entityId: string; changeId: string; branchId: string; deviceId: string | null; waitsFor: number }
  | {
      type: 'backlogFlushed';
      reason: 'RELEASED' | 'FORCED';
      datasetName: string;
      entityId: string;
      /** The held changes applied, in order, with the versions they made. */
      changes: { changeId: string; version: number }[];
    }
  /** A reviewer resolved the entity's conflict; `version` is the entity's version after it (inboxes drop it). */
  | { type: 'conflictResolved'; datasetName: string; entityId: string; version: number; resolutionId: number }
  /**
   * The service refused a change of an existing dataset (at once, or when a held change could not
   * be released or forced). For webhooks only: no subscription serves it, so it does not cross the bus.
   */
  | { type: 'changeRejected'; datasetName: string; entityId: string | null; changeId: string; deviceId: string | null; code: ErrorCode; message: string }
  /** An API token was revoked: its open sockets and streams end on every instance. */
  | { type: 'tokenRevoked'; tokenId: string }
  /** An admin changed an API token's subset: instances forget its cached lookup, its subscriptions re-read the rules. */
  | { type: 'tokenSubsetChanged'; tokenId: string };

/** The events dashboards subscribe to: each belongs to one entity of one dataset. */
export type EntityEvent = Exclude<SyncEvent, { type: 'tokenRevoked' } | { type: 'changeRejected' } | { type: 'tokenSubsetChanged' }>;
