import { asc, eq, or } from 'drizzle-orm';
import { heldChanges } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { entityVersions } from '../db/entities.js';

export interface BranchChange {
  /** Position in the run: the client baseVersion (0 for an offline create). */
  position: number;
  changeId: string;
  state: 'APPLIED' | 'HELD';
  /** Server version made, once applied. */
  version: number | null;
  heldSince: Date | null;
}

export interface Branch {
  id: string;
  entityId: string;
  trunkVersion: number | null;
  /** In run order. */
  changes: BranchChange[];
  /** Positions missing between the trunk and the last change the server has: what the run waits for. */
  missingPositions: number[];
}

/** An offline run as the server knows it: applied and held changes in run order, and its gaps. */
export async function loadBranches(db: Db, by: { branchId?: string; entityId?: string }): Promise<Branch[]> {
  const vWhere = by.branchId ? eq(entityVersions.branchId, by.branchId) : eq(entityVersions.entityId, by.entityId!);
  const hWhere = by.branchId ? eq(heldChanges.branchId, by.branchId) : eq(heldChanges.entityId, by.entityId!);
  const [applied, held] = await Promise.all([
    db
      .select({ branchId: entityVersions.branchId, entityId: entityVersions.entityId, trunkVersion: entityVersions.trunkVersion, position: entityVersions.baseVersion, changeId: entityVersions.changeId, version: entityVersions.version })
      .from(entityVersions)
      .where(vWhere)
      .orderBy(asc(entityVersions.version)),
    db.select().from(heldChanges).where(or(hWhere)),
  ]);
  const branches = new Map<string, Branch>();
  const get = (id: string, entityId: string, trunkVersion: number | null) => {
    let b = branches.get(id);
    if (!b) branches.set(id, (b = { id, entityId, trunkVersion, changes: [], missingPositions: [] }));
    return b;
  };
  for (const v of applied) {
    if (!v.branchId) continue;
    get(v.branchId, v.entityId, v.trunkVersion).changes.push({ position: v.position ?? 0, changeId: v.changeId, state: 'APPLIED', version: v.version, heldSince: null });
  }
  for (const h of held) {
    get(h.branchId, h.entityId, h.trunkVersion).changes.push({ position: h.baseVersion, changeId: h.changeId, state: 'HELD', version: null, heldSince: h.heldSince });
  }
  for (const b of branches.values()) {
    b.changes.sort((x, y) => x.position - y.position);
    const have = new Set(b.changes.map((c) => c.position));
    const first = b.trunkVersion ?? 0;
    const last = b.changes.at(-1)?.position ?? first;
    for (let p = first; p < last; p++) if (!have.has(p)) b.missingPositions.push(p);
  }
  return [...branches.values()];
}
