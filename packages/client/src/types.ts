import type { ChangeAction, ChangeOutcome, ConflictType, JsonValue, OperationInput, PropertyValues } from '../../../src/core/types.js';

/** A change as the client sends it; frozen once made, so every resend carries the same payload. */
export interface WireChange {
  id: string;
  deviceId: string;
  dataset: string;
  entityId?: string;
  localId?: string;
  action: ChangeAction;
  label?: string;
  data?: PropertyValues;
  operations?: OperationInput[];
  branchId: string;
  trunkVersion: number | null;
  baseVersion?: number;
}

/**
 * An outbox entry: `pending` until the server answers, `held` while it waits in the backlog,
 * `applied` until a pull brings its version. A pending entry the server failed on
 * (`INTERNAL_ERROR`) carries how often that happened and when it is sent again.
 */
export interface OutboxEntry {
  change: WireChange;
  status: 'pending' | 'held' | 'applied';
  version?: number;
  waitsFor?: number;
  /** Answers that said "resend" so far. */
  attempts?: number;
  /** Not sent again before this time (ms since the epoch). */
  retryAt?: number;
}

/** The last server state of an entity the client pulled. */
export interface ServerEntity {
  dataset: string;
  label: string;
  data: PropertyValues;
  version: number;
  deleted: boolean;
}

/** An offline run of one entity: begun at the first local edit after the last pull of it. */
export interface Run {
  branchId: string;
  trunkVersion: number | null;
  /** The baseVersion of the run's next change. */
  next: number;
}

/** Everything the client persists, as one document. */
export interface ClientState {
  version: 1;
  datasets: string[];
  cursors: Record<string, string>;
  entities: Record<string, ServerEntity>;
  /** By entity key: the entityId, or `local:<localId>` while the server has not minted one. */
  runs: Record<string, Run>;
  /** This device's local ids: the minted entityId, or null while unknown. */
  localIds: Record<string, string | null>;
  outbox: OutboxEntry[];
  /**
   * Entities a pull said left the token's subset (an edit moved them out, or an admin reassigned
   * the device) that the client still keeps because its own changes to them wait for an answer.
   * Never shown; dropped at the end of the first pull after those changes are answered.
   */
  outside?: Record<string, true>;
  /** The token's subset as of the last pull (`viewer.subset`): local edits that leave it are not shown. Null or absent: whole datasets. */
  subset?: SubsetRule[] | null;
}

/** One rule of a token's subset: the entity's `property` holds one of `values`. */
export interface SubsetRule {
  property: string;
  values: string[];
}

/** One submitted change's result, as the server returns it. */
export interface ChangeResult {
  changeId: string;
  outcome: ChangeOutcome;
  originalOutcome: ChangeOutcome | null;
  entityId: string | null;
  localId: string | null;
  version: number | null;
  conflict: ConflictType | null;
  conflictingProperties: string[];
  waitsFor: number | null;
  error: { code: string; message: string } | null;
  released?: ChangeResult[];
}

/** A pulled version. */
export interface PulledVersion {
  entityId: string;
  version: number;
  label: string;
  data: PropertyValues;
  deleted: boolean;
  changeId: string;
  conflict: ConflictType | null;
  conflictingProperties: string[];
}

export interface PullPage {
  cursor: string;
  hasMore: boolean;
  localIds: { localId: string; entityId: string }[];
  versions: PulledVersion[];
  /** Entities that entered the token's subset by a reassignment, at their current version (older than the cursor). */
  entered: PulledVersion[];
  /** Entities that left the token's subset: applied after `versions` and `entered`. */
  left: string[];
}

/** The optimistic view of an entity: last pulled server state with pending changes on top. */
export interface EntityView {
  /** Null while the entity was created by local id and the server has not minted its UUID yet. */
  id: string | null;
  localId: string | null;
  dataset: string;
  label: string;
  data: PropertyValues;
  deleted: boolean;
  /** The pulled server version, null when never pulled. */
  serverVersion: number | null;
  /** Local changes not yet seen in a pull. */
  pending: number;
}

export type TransportMode = 'socket' | 'http';

export interface SyncEvents {
  conflict: { changeId: string; entityId: string | null; version: number | null; conflict: ConflictType; conflictingProperties: string[] };
  held: { changeId: string; entityId: string | null; waitsFor: number | null };
  applied: { changeId: string; entityId: string | null; version: number | null; duplicate: boolean };
  rejected: { changeId: string; entityId: string | null; code: string; message: string; change: WireChange };
  /** The server failed on a change unexpectedly (INTERNAL_ERROR): it stays in the outbox and is sent again by a sync from `retryAt` on. */
  retry: { changeId: string; entityId: string | null; code: string; message: string; attempt: number; retryAt: number };
  /** The server refused the token (unknown or revoked): the client stops sending; make a new one with a valid token. */
  auth: { code: 'UNAUTHENTICATED'; reason: string };
  transport: { mode: TransportMode; reason: string };
  /**
   * An entity left this device's subset (an edit moved it out, or an admin reassigned the device)
   * and the client dropped it, once none of its own changes to it waited for an answer any more.
   * `dropped`: its changes the server had answered (applied or held) that left the outbox with it;
   * the server keeps them, the device no longer sees what becomes of them.
   */
  left: { entityId: string; dataset: string; dropped: string[] };
  synced: { pushed: number; pulled: number; pending: number; held: number };
}

export type SyncEventName = keyof SyncEvents;

/** What `update` accepts: property values, or operations replayed on the server state. */
export type UpdateInput = Record<string, JsonValue> | OperationInput[];
