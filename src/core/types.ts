/** Shared vocabulary of the pure rules. No I/O, no database types. */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type PropertyValues = Record<string, JsonValue>;

/**
 * Changes as replayable operations (DESIGN "Operations"); rules in operations.ts.
 */
export const OPERATION_KINDS = ['SET', 'UNSET', 'LIST_ADD', 'LIST_REMOVE', 'INCREMENT', 'SET_LABEL'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

export type Operation =
  | { op: 'SET'; property: string; value: JsonValue }
  | { op: 'UNSET'; property: string }
  | { op: 'LIST_ADD'; property: string; value: JsonValue; index: number | null }
  | { op: 'LIST_REMOVE'; property: string; value: JsonValue }
  | { op: 'INCREMENT'; property: string; by: number }
  | { op: 'SET_LABEL'; value: string };

/** Operations as they arrive: loose, checked by parseOperations. */
export interface OperationInput {
  op: string;
  property?: string | null;
  value?: unknown;
  index?: number | null;
  by?: number | null;
}

export const CHANGE_OUTCOMES = ['APPLIED', 'HELD', 'DUPLICATE', 'REJECTED'] as const;
export type ChangeOutcome = (typeof CHANGE_OUTCOMES)[number];

export const CHANGE_ACTIONS = ['CREATE', 'UPDATE', 'DELETE'] as const;
export type ChangeAction = (typeof CHANGE_ACTIONS)[number];

export const CONFLICT_TYPES = ['SOFT', 'HARD'] as const;
export type ConflictType = (typeof CONFLICT_TYPES)[number];

/** How a version came to be applied. */
export const VERSION_SOURCES = ['ONLINE', 'IN_ORDER', 'RELEASED', 'FORCED', 'REVIEW'] as const;
export type VersionSource = (typeof VERSION_SOURCES)[number];

/** Every machine code a rejected change (or a failed mutation) can carry. */
export const ERROR_CODES = {
  UNKNOWN_DATASET: 'the dataset does not exist',
  UNKNOWN_PROPERTY: 'a property is not declared by the dataset',
  ENTITY_NOT_FOUND: 'the entity does not exist',
  ENTITY_EXISTS: 'an entity with this id already exists',
  ENTITY_DELETED: 'the entity has been deleted',
  BASE_VERSION_AHEAD: 'baseVersion is ahead of the server',
  BASE_VERSION_MISSING: 'an update or delete needs baseVersion',
  BASE_VERSION_INVALID: 'baseVersion must be a positive integer',
  TRUNK_VERSION_AHEAD: 'trunkVersion is ahead of the server',
  TRUNK_VERSION_WITHOUT_BRANCH: 'trunkVersion needs branchId',
  BASE_BELOW_TRUNK: 'baseVersion is below trunkVersion',
  BRANCH_TRUNK_CHANGED: 'the branch began at another trunkVersion',
  BRANCH_POSITION_TAKEN: 'another change already holds this position of the branch',
  BRANCH_ON_OTHER_ENTITY: 'the branch id is used by another entity',
  BRANCH_OF_OTHER_DEVICE: 'the offline run was begun by another device: a run belongs to the device that began it',
  RUN_TOO_LONG: 'the offline run is longer than the server accepts',
  MALFORMED_ID: 'an id is not a UUID',
  MALFORMED_CHANGE: 'the change is not well formed',
  MISSING_ENTITY_ID: 'the change needs entityId',
  MISSING_LABEL: 'a create needs a non-empty label',
  INVALID_LABEL: 'the label is not acceptable',
  INVALID_PROPERTY_VALUE: 'a property value is not acceptable',
  TOO_LARGE: 'the change is too large',
  CHANGE_ID_REUSED: 'this change id was already used for a different change',
  EMPTY_BATCH: 'the batch holds no changes',
  BATCH_TOO_LARGE: 'the batch holds too many changes',
  DATASET_EXISTS: 'a dataset with this name already exists',
  TOO_MANY_DATASETS: 'the service holds as many datasets as it allows',
  INVALID_NAME: 'the name is not acceptable',
  NOT_IN_CONFLICT: 'the entity has no unresolved conflict',
  STALE_VERSION: 'the entity has moved past the version the reviewer looked at (reload it and decide again)',
  VERSION_AHEAD: 'the version named is ahead of the entity (no such version was ever shown)',
  ENTITY_NOT_DELETED: 'the entity is not deleted, so there is nothing to restore',
  INVALID_NOTE: 'the note is not acceptable',
  INTERNAL_ERROR: 'the server failed to process the change',
  INVALID_OPERATION: 'an operation is not well formed',
  OPERATION_TYPE_MISMATCH: 'an operation does not fit the type of the current value',
  VALUE_OUT_OF_RANGE: 'the result is not a finite number',
  MISSING_DEVICE_ID: 'a change with a localId needs deviceId',
  LOCAL_ID_UNKNOWN: 'no entity is known by this localId for this device',
  INVALID_CURSOR: 'the cursor is not one this server handed out',
  UNAUTHENTICATED: 'no valid API token (Authorization: Bearer <token>) came with the request',
  FORBIDDEN: "the token's role, datasets or device do not allow this",
  TOKEN_NOT_FOUND: 'no API token has this id',
  INVALID_DEVICE_ID: 'the device id is not acceptable',
  ADMIN_TOKEN_RESTRICTED: 'an admin token applies to every dataset and device: it takes no datasets or device id',
  INVALID_WEBHOOK_URL: 'a webhook URL must be an absolute http(s) URL without credentials or fragment',
  INVALID_WEBHOOK: 'the webhook is not acceptable',
  WEBHOOK_NOT_FOUND: 'no webhook has this id',
  WEBHOOK_LIMIT: 'the service already has as many webhooks as it accepts',
  OUTSIDE_SUBSET: "the entity is not in the token's subset",
  INVALID_SUBSET: 'the subset is not acceptable',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export interface ChangeError {
  code: ErrorCode;
  message: string;
}

/** A change as the client sent it, before validation. Everything is optional or loose. */
export interface ChangeInput {
  id: string;
  deviceId?: string | null;
  dataset: string;
  entityId?: string | null;
  action: ChangeAction;
  label?: string | null;
  data?: unknown;
  baseVersion?: number | null;
  trunkVersion?: number | null;
  branchId?: string | null;
  /** A client-local id instead of entityId, scoped to deviceId. */
  localId?: string | null;
  operations?: readonly OperationInput[] | null;
}

/** A change that passed the checks that need no database. */
export interface ValidChange {
  id: string;
  deviceId: string | null;
  dataset: string;
  entityId: string;
  action: ChangeAction;
  label: string | null;
  data: PropertyValues;
  baseVersion: number | null;
  trunkVersion: number | null;
  branchId: string | null;
  localId?: string | null;
  /** Replayed after `data` (which is sugar for one SET per property). */
  operations?: Operation[];
}

/** The state of an entity that the rules work on. */
export interface EntityState {
  label: string;
  data: PropertyValues;
  version: number;
  deleted: boolean;
}

export interface Limits {
  maxBatch: number;
  maxChangeBytes: number;
  maxLabelLength: number;
  maxProperties: number;
  /**
   * Changes one offline run may hold (baseVersion - trunkVersion, or baseVersion after an offline
   * create): bounds every position the server accepts, so no gap or chain can be unbounded.
   */
  maxRunLength: number;
  /**
   * Fields a query may resolve, estimated before it runs from its shape and its page sizes
   * (Pothos complexity): the work one request may cause, whoever sends it.
   */
  maxQueryComplexity: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBatch: 500,
  maxChangeBytes: 64 * 1024,
  maxLabelLength: 1000,
  maxProperties: 200,
  maxRunLength: 10_000,
  // The dashboard's dearest document (the conflict inbox, a page of 20 with their competing
  // values) costs about 40,500; a query at this limit loads at most about
  // 100,000 rows, a few seconds of a PGlite server (test/server/query-cost.test.ts).
  maxQueryComplexity: 100_000,
};
