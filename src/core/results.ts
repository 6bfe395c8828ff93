import type { ChangeError, ChangeOutcome, ConflictType } from './types.js';

/** What became of one submitted (or released, or forced) change: the answer a client gets. */
export interface ChangeResult {
  changeId: string;
  outcome: ChangeOutcome;
  /** For a DUPLICATE: what the first submission of this change came to (as it stands now). */
  originalOutcome: ChangeOutcome | null;
  entityId: string | null;
  version: number | null;
  conflict: ConflictType | null;
  conflictingProperties: string[];
  /**
   * The dataset the change named: its entity is shown only when it belongs to it (core
   * mayReachEntity). Not part of the answer itself.
   */
  dataset?: string | null;
  /** The client's local id, echoed beside the entityId the server minted for it. */
  localId?: string | null;
  /** For HELD: the client baseVersion of the predecessor it waits for. */
  waitsFor: number | null;
  error: ChangeError | null;
  /** Held changes of the same run applied right after this one, in order. */
  released: ChangeResult[];
}

export function changeResult(changeId: string, outcome: ChangeOutcome, fields: Partial<ChangeResult> = {}): ChangeResult {
  return { changeId, outcome, originalOutcome: null, entityId: null, version: null, conflict: null, conflictingProperties: [], waitsFor: null, error: null, released: [], ...fields };
}
