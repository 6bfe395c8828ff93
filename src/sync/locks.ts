import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client.js';

/**
 * Transaction-scoped advisory locks. Key space 1 serialises one change id (so a resend racing
 * its original sees it), space 2 one entity id (its row may not exist yet, so a row lock
 * cannot do). Always change first, then entity: one order, no deadlock.
 */
export async function lockChangeAndEntity(tx: Tx, changeKey: string, entityId: string | null, branchId: string | null = null): Promise<void> {
  if (entityId && branchId) {
    // Space 3: a run, so two first changes of one branch on two entities cannot both pass the check.
    await tx.execute(
      sql`select /* lockChangeEntityBranch */ pg_advisory_xact_lock(1, hashtext(${changeKey})), pg_advisory_xact_lock(2, hashtext(${entityId})), pg_advisory_xact_lock(3, hashtext(${branchId}))`,
    );
  } else if (entityId) {
    await tx.execute(sql`select /* lockChangeAndEntity */ pg_advisory_xact_lock(1, hashtext(${changeKey})), pg_advisory_xact_lock(2, hashtext(${entityId}))`);
  } else {
    await tx.execute(sql`select /* lockChange */ pg_advisory_xact_lock(1, hashtext(${changeKey}))`);
  }
}

export async function lockEntity(tx: Tx, entityId: string): Promise<void> {
  await tx.execute(sql`select /* lockEntity */ pg_advisory_xact_lock(2, hashtext(${entityId}))`);
}
