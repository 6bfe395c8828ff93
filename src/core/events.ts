import type { ConflictType } from './types.js';

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
  | { type: 'changeHeld'; datasetName: string; entityId: string; changeId: string; branchId: string; waitsFor: number }
  | {
      type: 'backlogFlushed';
      reason: 'RELEASED' | 'FORCED';
      datasetName: string;
      entityId: string;
      /** The held changes applied, in order, with the versions they made. */
      changes: { changeId: string; version: number }[];
    }
  /** A reviewer resolved the entity's conflict (at its version `version`): inboxes drop it. */
  | { type: 'conflictResolved'; datasetName: string; entityId: string; version: number }
  /** An API token was revoked: its open sockets and streams end on every instance. */
  | { type: 'tokenRevoked'; tokenId: string }
  /** An admin changed an API token's subset: instances forget its cached lookup, its subscriptions re-read the rules. */
  | { type: 'tokenSubsetChanged'; tokenId: string };

/** The events dashboards subscribe to: each belongs to one entity of one dataset. */
export type EntityEvent = Exclude<SyncEvent, { type: 'tokenRevoked' } | { type: 'tokenSubsetChanged' }>;
