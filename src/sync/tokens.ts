import { createHash, randomBytes } from 'node:crypto';
import { and, asc, count, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Principal, Role } from '../core/auth.js';
import { DomainError } from '../core/errors.js';
import { hasNul } from '../core/json.js';
import type { SubsetRuleInput } from '../core/subsets.js';
import { normalizeUuid, validateName } from '../core/validate.js';
import type { Db, Tx } from '../db/client.js';
import { apiTokens } from '../db/tokens.js';
import type { SyncEvent } from '../core/events.js';
import { rowsOf } from './batch-store.js';
import { lockSubsets, writeSubsetMoves } from './subset-moves.js';
import { inStoredSubsetSql } from './subset-sql.js';

export type TokenRow = typeof apiTokens.$inferSelect;

/** Recognisable in logs and secret scanners; the rest is 256 random bits. */
const PREFIX = 'est_';

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface NewToken {
  name: string;
  role: Role;
  deviceId?: string | null;
  datasets?: readonly string[] | null;
  /** Rules on declared properties (core/subsets.ts); absent or empty: the whole datasets. */
  subset?: readonly SubsetRuleInput[] | null;
}

/**
 * Creates a token; the secret is returned here once and never stored. A token with a subset gets
 * its share (ENTERED rows of its subset log) in the same transaction, so its first pull hands it
 * out.
 */
export async function createToken(db: Db | Tx, input: NewToken): Promise<{ secret: string; token: TokenRow }> {
  // A token's name is free text for people ("Tablet 7, north site"), unlike dataset names.
  if (input.name.trim().length === 0 || input.name.length > 200 || hasNul(input.name)) {
    throw new DomainError('INVALID_NAME', 'a token name has 1 to 200 characters and no NUL');
  }
  // An admin creates datasets and tokens: a dataset or device list on it would be a promise the
  // role cannot keep.
  if (input.role === 'admin' && (input.deviceId != null || input.datasets != null || (input.subset?.length ?? 0) > 0)) throw new DomainError('ADMIN_TOKEN_RESTRICTED');
  if (input.deviceId != null && (input.deviceId.length === 0 || input.deviceId.length > 200 || hasNul(input.deviceId))) {
    throw new DomainError('INVALID_DEVICE_ID', 'a device id has 1 to 200 characters and no NUL');
  }
  for (const dataset of input.datasets ?? []) {
    const error = validateName(dataset);
    if (error) throw new DomainError(error.code, `dataset "${dataset.slice(0, 60)}": ${error.message}`);
  }
  const secret = PREFIX + randomBytes(32).toString('base64url');
  const row = { name: input.name, secretHash: hashSecret(secret), role: input.role, deviceId: input.deviceId ?? null, datasets: input.datasets ? [...new Set(input.datasets)] : null };
  if (!input.subset || input.subset.length === 0) {
    const [token] = await db.insert(apiTokens).values(row).returning();
    return { secret, token: token! };
  }
  const rules = input.subset;
  const token = await db.transaction(async (tx) =>
    writeSubsetMoves(tx, { role: row.role, datasets: row.datasets }, null, rules, async (subset) => {
      const [made] = await tx.insert(apiTokens).values({ ...row, subset, subsetChangedAt: new Date() }).returning();
      return made!;
    }),
  );
  return { secret, token };
}

/**
 * An admin moves a device to another share (DESIGN "Subsets"): the token's rules change at once,
 * and its subset log gets, in the same transaction, LEFT for each entity it held that the new
 * rules leave out and ENTERED (with the entity's state) for each it did not hold that they take
 * in. A device's cursor from before keeps working: its next pull reads those rows. An empty
 * subset is the whole datasets. The returned event tells every instance.
 */
export async function setTokenSubset(db: Db, id: string, subset: readonly SubsetRuleInput[]): Promise<{ token: TokenRow; events: SyncEvent[] }> {
  const uuid = normalizeUuid(id);
  const notFound = () => new DomainError('TOKEN_NOT_FOUND', `no API token has the id "${String(id).slice(0, 60)}"`);
  if (!uuid) throw notFound();
  return db.transaction(async (tx) => {
    const [found] = await tx.select({ datasets: apiTokens.datasets }).from(apiTokens).where(eq(apiTokens.id, uuid)).limit(1);
    if (!found) throw notFound();
    // Read again under the locks: what the token holds is what its last reassignment left.
    if (found.datasets) await lockSubsets(tx, found.datasets);
    const [current] = await tx.select().from(apiTokens).where(eq(apiTokens.id, uuid)).limit(1);
    if (!current) throw notFound();
    if (current.revokedAt) throw new DomainError('TOKEN_NOT_FOUND', `the API token "${uuid}" is revoked`);
    // No rules before and none asked for: it stays a whole-datasets token, pulling versions.
    if (current.subset === null && subset.length === 0) return { token: current, events: [] };
    const token = await writeSubsetMoves(tx, current, current.subset ?? 'ALL', subset, async (rules) => {
      // Under the datasets' subset locks: no other reassignment of this token runs meanwhile.
      const [changed] = await tx.update(apiTokens).set({ subset: rules, subsetChangedAt: new Date() }).where(eq(apiTokens.id, uuid)).returning();
      return changed!;
    });
    return { token, events: [{ type: 'tokenSubsetChanged' as const, tokenId: token.id }] };
  });
}

/** A token's subset as stored now (null: the whole datasets), read where a cached principal is not enough. */
export async function tokenSubset(db: Db, id: string): Promise<TokenRow['subset']> {
  const [row] = await db.select({ subset: apiTokens.subset }).from(apiTokens).where(eq(apiTokens.id, id)).limit(1);
  return row?.subset ?? null;
}

/**
 * Who a bearer secret stands for, or why no one: it was never issued (or is not even shaped like
 * a token), or it was revoked. One lookup either way, so that a refusal can say which (one is
 * worth fixing, neither worth retrying as is) at no cost to anyone.
 */
export async function authenticate(db: Db, secret: string): Promise<{ principal: Principal } | { refused: 'unknown' | 'revoked' }> {
  if (!secret.startsWith(PREFIX) || secret.length > 200) return { refused: 'unknown' };
  const [row] = await db
    .select({ id: apiTokens.id, role: apiTokens.role, deviceId: apiTokens.deviceId, datasets: apiTokens.datasets, subset: apiTokens.subset, revokedAt: apiTokens.revokedAt })
    .from(apiTokens)
    .where(eq(apiTokens.secretHash, hashSecret(secret)))
    .limit(1);
  if (!row) return { refused: 'unknown' };
  if (row.revokedAt) return { refused: 'revoked' };
  return { principal: { tokenId: row.id, role: row.role, deviceId: row.deviceId, datasets: row.datasets, subset: row.subset } };
}

/** Revokes a token; the returned event closes its open sockets and streams on every instance. */
export async function revokeToken(db: Db, id: string): Promise<{ token: TokenRow; events: SyncEvent[] }> {
  const uuid = normalizeUuid(id);
  if (!uuid) throw new DomainError('TOKEN_NOT_FOUND', `no API token has the id "${String(id).slice(0, 60)}"`);
  const [token] = await db.update(apiTokens).set({ revokedAt: new Date() }).where(and(eq(apiTokens.id, uuid), isNull(apiTokens.revokedAt))).returning();
  if (token) return { token, events: [{ type: 'tokenRevoked', tokenId: token.id }] };
  // Revoking twice is not an error; revoking nothing is.
  const [already] = await db.select().from(apiTokens).where(eq(apiTokens.id, uuid)).limit(1);
  if (!already) throw new DomainError('TOKEN_NOT_FOUND', `no API token has the id "${uuid}"`);
  return { token: already, events: [] };
}

/** Tokens revoked, or whose subset changed, in the last `seconds` (by the database clock), as their events. */
async function recentTokenEvents(db: Db, seconds: number): Promise<TokenEvent[]> {
  const rows = await db
    .select({ id: apiTokens.id, revoked: sql<boolean>`${apiTokens.revokedAt} is not null` })
    .from(apiTokens)
    .where(sql`/* recentTokenEvents */ ${apiTokens.revokedAt} > now() - make_interval(secs => ${seconds}) or ${apiTokens.subsetChangedAt} > now() - make_interval(secs => ${seconds})`);
  return rows.map((r) => ({ type: r.revoked ? 'tokenRevoked' : 'tokenSubsetChanged', tokenId: r.id }));
}

type TokenEvent = Extract<SyncEvent, { type: 'tokenRevoked' | 'tokenSubsetChanged' }>;

/**
 * Revocations and subset changes travel as events, and one can be lost (a NOTIFY on a connection
 * cut right after the commit). So every `intervalSeconds` this reads the tokens revoked or
 * reassigned in the last three intervals and hands their events to `announce` (this instance
 * only: each instance sweeps).
 */
export function startRevocationSweep(db: Db, opts: { intervalSeconds: number; announce: (events: readonly TokenEvent[]) => void; onError: (error: unknown) => void }): { stop(): void } {
  const timer = setInterval(() => {
    recentTokenEvents(db, 3 * opts.intervalSeconds).then(opts.announce, opts.onError);
  }, opts.intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export async function listTokens(db: Db): Promise<TokenRow[]> {
  return db.select().from(apiTokens).orderBy(asc(apiTokens.createdAt), asc(apiTokens.id));
}

/**
 * A fresh database has no way in: make an admin token, once, for the operator to read off the
 * console. Null when any token exists already (revoked ones too: the operator has been here).
 * Instances started together on one Postgres each ask: the lock lets one count and insert at a
 * time, so the others count its token and make none.
 */
export async function createFirstAdminToken(db: Db): Promise<string | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select /* firstAdminTokenLock */ pg_advisory_xact_lock(hashtext('entity-sync first admin token'))`);
    const [row] = await tx.select({ n: count() }).from(apiTokens);
    if ((row?.n ?? 0) > 0) return null;
    const { secret } = await createToken(tx, { name: 'first admin', role: 'admin' });
    return secret;
  });
}

/** One page of the tokens whose subset includes an entity, and whether more follow. */
export interface TokenPage {
  tokens: TokenRow[];
  hasMore: boolean;
}

/**
 * For each entity, a page of the live tokens whose subset includes it (core inSubset on its
 * current properties, in SQL), in creation order after `after` (a token's seq): what a reviewer
 * reads to know which devices hold a record. Tokens without a subset see every entity of their
 * datasets and are not listed. One statement for every entity of a page, each reading tokens from
 * the seq index until its page is full.
 */
export async function subsetTokenPages(db: Db, entityIds: readonly string[], page: { first: number; after: number | null }): Promise<TokenPage[]> {
  if (entityIds.length === 0) return [];
  const pairs = rowsOf<{ entity_id: string; token_id: string }>(
    await db.execute(sql`select /* subsetTokensOf */ e.id as entity_id, t.id as token_id
      from entities e join datasets d on d.id = e.dataset_id
      cross join lateral (
        select k.id, k.seq from api_tokens k
        where k.revoked_at is null and k.subset is not null and d.name = any(k.datasets) and k.seq > ${page.after ?? 0}
          and ${inStoredSubsetSql(sql`e.data`, sql`k.subset`)}
        order by k.seq limit ${page.first + 1}
      ) t
      where e.id = any(${sql.param([...entityIds])}::uuid[])
      order by e.id, t.seq`),
  );
  const ids = [...new Set(pairs.map((p) => p.token_id))];
  const rows = ids.length === 0 ? [] : await db.select().from(apiTokens).where(inArray(apiTokens.id, ids));
  const byId = new Map(rows.map((r) => [r.id, r]));
  const ofEntity = new Map<string, TokenRow[]>();
  for (const p of pairs) ofEntity.set(p.entity_id, [...(ofEntity.get(p.entity_id) ?? []), byId.get(p.token_id)!]);
  return entityIds.map((entityId) => {
    const tokens = ofEntity.get(entityId) ?? [];
    return { tokens: tokens.slice(0, page.first), hasMore: tokens.length > page.first };
  });
}
