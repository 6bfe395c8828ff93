import { createHash, randomBytes } from 'node:crypto';
import { and, asc, count, eq, isNull, sql } from 'drizzle-orm';
import type { Principal, Role } from '../core/auth.js';
import { DomainError } from '../core/errors.js';
import { hasNul } from '../core/json.js';
import { normalizeUuid, validateName } from '../core/validate.js';
import type { Db, Tx } from '../db/client.js';
import { apiTokens } from '../db/tokens.js';
import type { SyncEvent } from '../core/events.js';

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
}

/** Creates a token; the secret is returned here once and never stored. */
export async function createToken(db: Db | Tx, input: NewToken): Promise<{ secret: string; token: TokenRow }> {
  // A token's name is free text for people ("Tablet 7, north site"), unlike dataset names.
  if (input.name.trim().length === 0 || input.name.length > 200 || hasNul(input.name)) {
    throw new DomainError('INVALID_NAME', 'a token name has 1 to 200 characters and no NUL');
  }
  // An admin creates datasets and tokens: a dataset or device list on it would be a promise the
  // role cannot keep.
  if (input.role === 'admin' && (input.deviceId != null || input.datasets != null)) throw new DomainError('ADMIN_TOKEN_RESTRICTED');
  if (input.deviceId != null && (input.deviceId.length === 0 || input.deviceId.length > 200 || hasNul(input.deviceId))) {
    throw new DomainError('INVALID_DEVICE_ID', 'a device id has 1 to 200 characters and no NUL');
  }
  for (const dataset of input.datasets ?? []) {
    const error = validateName(dataset);
    if (error) throw new DomainError(error.code, `dataset "${dataset.slice(0, 60)}": ${error.message}`);
  }
  const secret = PREFIX + randomBytes(32).toString('base64url');
  const [token] = await db
    .insert(apiTokens)
    .values({ name: input.name, secretHash: hashSecret(secret), role: input.role, deviceId: input.deviceId ?? null, datasets: input.datasets ? [...new Set(input.datasets)] : null })
    .returning();
  return { secret, token: token! };
}

/**
 * Who a bearer secret stands for, or why no one: it was never issued (or is not even shaped like
 * a token), or it was revoked. One lookup either way, so that a refusal can say which (one is
 * worth fixing, neither worth retrying as is) at no cost to anyone.
 */
export async function authenticate(db: Db, secret: string): Promise<{ principal: Principal } | { refused: 'unknown' | 'revoked' }> {
  if (!secret.startsWith(PREFIX) || secret.length > 200) return { refused: 'unknown' };
  const [row] = await db
    .select({ id: apiTokens.id, role: apiTokens.role, deviceId: apiTokens.deviceId, datasets: apiTokens.datasets, revokedAt: apiTokens.revokedAt })
    .from(apiTokens)
    .where(eq(apiTokens.secretHash, hashSecret(secret)))
    .limit(1);
  if (!row) return { refused: 'unknown' };
  if (row.revokedAt) return { refused: 'revoked' };
  return { principal: { tokenId: row.id, role: row.role, deviceId: row.deviceId, datasets: row.datasets } };
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

/** Ids of the tokens revoked in the last `seconds` (by the database clock). */
async function recentlyRevoked(db: Db, seconds: number): Promise<string[]> {
  const rows = await db
    .select({ id: apiTokens.id })
    .from(apiTokens)
    .where(sql`${apiTokens.revokedAt} > now() - make_interval(secs => ${seconds})`);
  return rows.map((r) => r.id);
}

/**
 * Revocations travel as events, and one can be lost (a NOTIFY on a connection cut right after
 * the commit). So every `intervalSeconds` this reads the tokens revoked in the last three
 * intervals and hands their events to `announce` (this instance only: each instance sweeps).
 */
export function startRevocationSweep(
  db: Db,
  opts: { intervalSeconds: number; announce: (events: readonly Extract<SyncEvent, { type: 'tokenRevoked' }>[]) => void; onError: (error: unknown) => void },
): { stop(): void } {
  const timer = setInterval(() => {
    recentlyRevoked(db, 3 * opts.intervalSeconds).then((ids) => opts.announce(ids.map((tokenId) => ({ type: 'tokenRevoked', tokenId }))), opts.onError);
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
