/**
 * What one client sends in the batch phases, the same for entity-sync (over HTTP) and for the
 * set-based SQL baseline (bench/set-sql.ts), so that both write the same rows:
 * - InOrderWork: one in-order UPDATE of each of the client's entities per batch (baseVersion =
 *   current, no conflict);
 * - RunWork: offline runs, each batch holding `collect` runs as ODK Collect sends them (a CREATE
 *   without branchId, then its UPDATEs with the branchId, trunkVersion null, baseVersion 1, 2, …)
 *   and `existing` runs on the client's entities (branchId, trunkVersion = current, baseVersion
 *   trunk, trunk+1, …), every run `length` changes long, the whole batch sent reversed: each run's
 *   later changes arrive before its first, are held, and are released inside the batch by it.
 * State moves on only when a batch is known to have landed (`landed`). The values sent follow a
 * counter of each client's own, so two clients sending as many batches send the same values.
 */
import { randomUUID } from 'node:crypto';
import { updateData } from './lib.js';

/** A change as the API takes it (ChangeInput), in JSON. */
export interface BenchChange {
  id: string;
  deviceId: string;
  dataset: string;
  entityId: string;
  action: 'CREATE' | 'UPDATE';
  label?: string;
  data: Record<string, unknown>;
  baseVersion?: number;
  trunkVersion?: number | null;
  branchId?: string;
}

/** One run of a RunWork batch, in run order: `changes[0]` is its first (the create, or the change on the trunk). */
export interface BenchRun {
  entityId: string;
  branchId: string;
  /** Whether the run begins with an offline create (a new entity). */
  create: boolean;
  changes: BenchChange[];
  /** The server version its first change makes (1 for a create; trunk + 1 otherwise). */
  firstVersion: number;
}

export class InOrderWork {
  readonly versions: Map<string, number>;
  private n = 0;
  constructor(
    readonly deviceId: string,
    readonly dataset: string,
    readonly entityIds: readonly string[],
    start = 1,
  ) {
    this.versions = new Map(entityIds.map((id) => [id, start]));
  }

  next(): BenchChange[] {
    return this.entityIds.map((entityId) => ({ id: randomUUID(), deviceId: this.deviceId, dataset: this.dataset, entityId, action: 'UPDATE', baseVersion: this.versions.get(entityId)!, data: updateData(this.n++) }));
  }

  landed(changes: readonly BenchChange[]): void {
    for (const c of changes) this.versions.set(c.entityId, c.baseVersion! + 1);
  }
}

export interface RunShape {
  /** Runs per batch that begin with an offline create (ODK Collect style). */
  collect: number;
  /** Runs per batch on the client's existing entities (one run each). */
  existing: number;
  /** Changes per run. */
  length: number;
}

export class RunWork {
  readonly versions: Map<string, number>;
  /** Every entity the runs touched, created ones included. */
  readonly touched = new Set<string>();
  private made = 0;
  private n = 0;
  constructor(
    readonly deviceId: string,
    readonly dataset: string,
    readonly existingIds: readonly string[],
    readonly shape: RunShape,
  ) {
    if (existingIds.length !== shape.existing) throw new Error(`RunWork: ${shape.existing} existing runs per batch need as many entities, not ${existingIds.length}`);
    this.versions = new Map(existingIds.map((id) => [id, 1]));
    for (const id of existingIds) this.touched.add(id);
  }

  get batchSize(): number {
    return (this.shape.collect + this.shape.existing) * this.shape.length;
  }

  /** The runs of the next batch, and the batch as sent: reversed. */
  next(): { runs: BenchRun[]; changes: BenchChange[] } {
    const { deviceId, dataset } = this;
    const { length } = this.shape;
    const runs: BenchRun[] = [];
    for (let r = 0; r < this.shape.collect; r++) {
      const entityId = randomUUID();
      const branchId = randomUUID();
      const create: BenchChange = { id: randomUUID(), deviceId, dataset, entityId, action: 'CREATE', label: `run ${this.made++}`, data: updateData(this.n++) };
      const updates = Array.from({ length: length - 1 }, (_, i): BenchChange => ({ id: randomUUID(), deviceId, dataset, entityId, action: 'UPDATE', branchId, trunkVersion: null, baseVersion: i + 1, data: updateData(this.n++) }));
      runs.push({ entityId, branchId, create: true, changes: [create, ...updates], firstVersion: 1 });
    }
    for (const entityId of this.existingIds) {
      const trunk = this.versions.get(entityId)!;
      const branchId = randomUUID();
      const changes = Array.from({ length }, (_, i): BenchChange => ({ id: randomUUID(), deviceId, dataset, entityId, action: 'UPDATE', branchId, trunkVersion: trunk, baseVersion: trunk + i, data: updateData(this.n++) }));
      runs.push({ entityId, branchId, create: false, changes, firstVersion: trunk + 1 });
    }
    return { runs, changes: runs.flatMap((r) => r.changes).reverse() };
  }

  landed(runs: readonly BenchRun[]): void {
    for (const r of runs) {
      this.touched.add(r.entityId);
      if (!r.create) this.versions.set(r.entityId, r.firstVersion + r.changes.length - 1);
    }
  }
}
