import type { IncomingMessage } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Principal, Role } from '../core/auth.js';
import { isDatabaseUnreachable, type Db } from '../db/client.js';
import { authenticate } from '../sync/tokens.js';
import { errorResponse, serviceUnavailable, unavailableResponse } from './errors.js';

export interface AuthOptions {
  /**
   * The role of requests that carry no token, for local development only. Unset (the default):
   * a request without a token is refused with 401. A wrong or revoked token is always refused.
   */
  anonymousRole?: Role | null;
  /** How often each instance re-reads recent revocations, in case an event was lost (default 10). */
  revocationSweepSeconds?: number;
}

/** Why a request or socket is nobody the server will serve. */
export type Refusal = 'no-token' | 'malformed' | 'unknown' | 'revoked' | 'unavailable';
type TokenRefusal = Exclude<Refusal, 'unavailable'>;

/**
 * What a refused request is told (the message of its UNAUTHENTICATED error): a missing token, a
 * header that is not a bearer token, a token never issued and a revoked one each need a
 * different fix. None of them says more than the caller sent.
 */
export const REFUSAL_MESSAGES: Record<TokenRefusal, string> = {
  'no-token': 'no API token came with the request: send one as "Authorization: Bearer <token>"',
  malformed: 'the Authorization header is not "Bearer <token>": send the token after the word Bearer and one space',
  unknown: 'the API token is not one this service issued: check that it was copied whole, or ask an administrator for one',
  revoked: 'the API token was revoked: ask an administrator for a new one',
};
type Outcome = { principal: Principal } | { refused: Refusal };

/**
 * The close code and reason of a socket refused at connection_init (and, for 'revoked', one
 * whose token is revoked while it is open). graphql-ws clients retry 4403 (the client may gain
 * credentials) and 1013, and give up on 4401: the same token will never be accepted.
 */
export const SOCKET_REFUSALS: Record<Refusal, { code: number; reason: string }> = {
  'no-token': { code: 4403, reason: 'Forbidden: no API token' },
  malformed: { code: 4401, reason: 'Unauthorized: not "Bearer <token>"' },
  unknown: { code: 4401, reason: 'Unauthorized: unknown API token' },
  revoked: { code: 4401, reason: 'Unauthorized: API token revoked' },
  unavailable: { code: 1013, reason: 'Try Again Later: the database cannot be reached' },
};

/**
 * The bearer secret of an HTTP request, a socket's connection_init payload, or its upgrade
 * request: null when none came, '' when what came is not "Bearer <token>".
 */
function bearerOf(source: { request?: Request; connectionParams?: Record<string, unknown> | undefined; req?: IncomingMessage }): string | null {
  const params = source.connectionParams;
  const fromParams = params && (params.authorization ?? params.Authorization);
  const header = typeof fromParams === 'string' ? fromParams : (source.request?.headers.get('authorization') ?? source.req?.headers.authorization ?? null);
  if (header === null) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : '';
}

/** The Host header of an HTTP request, a socket's upgrade request or a socket operation's context. */
function hostOf(source: { request?: Request; req?: IncomingMessage }): string | null {
  return source.request?.headers.get('host') ?? source.req?.headers.host ?? null;
}

/**
 * Anonymous access (ANONYMOUS_ROLE, loopback-only: main.ts) is given only to requests addressed to
 * a loopback name. A page of another site can make the browser send requests to 127.0.0.1 under
 * its own name (DNS rebinding: evil.example resolving to 127.0.0.1 after the page loaded); they
 * are then same-origin for the browser, Origin checks included, but carry `Host: evil.example`.
 */
export function loopbackHost(host: string | null): boolean {
  if (host === null) return false;
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function unauthenticated(why: TokenRefusal): GraphQLError {
  return new GraphQLError(REFUSAL_MESSAGES[why], {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
  });
}

/**
 * Who a request is, or why it is refused. A database that cannot be reached is a refusal too;
 * any other failure is thrown.
 */
async function principalFor(db: Db, secret: string | null, opts: AuthOptions, cache: TokenCache, host: string | null): Promise<Outcome> {
  if (secret === null) {
    return opts.anonymousRole && loopbackHost(host) ? { principal: { tokenId: null, role: opts.anonymousRole, deviceId: null, datasets: null, subset: null } } : { refused: 'no-token' };
  }
  if (secret === '') return { refused: 'malformed' };
  const cached = cache.get(secret);
  if (cached) return { principal: cached };
  try {
    const found = await authenticate(db, secret);
    if ('principal' in found) cache.set(secret, found.principal);
    return found;
  } catch (error) {
    if (isDatabaseUnreachable(error)) return { refused: 'unavailable' };
    throw error;
  }
}

/**
 * Authentication for yoga. Every request to the GraphQL endpoint, whatever its method, is
 * authenticated first (only a CORS preflight and the GraphiQL page, which yoga answers before
 * this plugin, are not): before its body is read or its document parsed and validated, so a
 * client that is nobody (no token, a wrong or revoked one) cannot make the server buffer a
 * 32 MiB body or probe the schema with validation errors. The principal found there is the
 * context's; socket operations are authenticated when their context is built.
 */
/** How long a token lookup is reused: a revocation also drops it at once (forget), on every instance. */
const TOKEN_CACHE_MS = 5_000;
/** Entries kept at most; past it the oldest go first. */
const TOKEN_CACHE_SIZE = 10_000;

/**
 * Token lookups of the last few seconds, so a busy device does not cost a query per request. Only
 * known tokens are kept (a wrong one is looked up every time); a revocation event drops the token's
 * entries at once (app.ts), and the revocation sweep repeats lost events, so a revoked token stops
 * working as before; an entry never outlives TOKEN_CACHE_MS either way.
 */
class TokenCache {
  private readonly entries = new Map<string, { principal: Principal; until: number }>();
  get(secret: string): Principal | null {
    const e = this.entries.get(secret);
    if (!e) return null;
    if (e.until > Date.now()) return e.principal;
    this.entries.delete(secret);
    return null;
  }
  set(secret: string, principal: Principal): void {
    if (this.entries.size >= TOKEN_CACHE_SIZE) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(secret, { principal, until: Date.now() + TOKEN_CACHE_MS });
  }
  forget(tokenId: string): void {
    for (const [secret, e] of this.entries) if (e.principal.tokenId === tokenId) this.entries.delete(secret);
  }
}

export function authenticator(db: Db, opts: AuthOptions & { endpoint: string; onError?: (error: unknown) => void }) {
  const early = new WeakMap<Request, Principal>();
  const cache = new TokenCache();
  const plugin: Plugin = {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname !== opts.endpoint || request.method === 'OPTIONS') return;
      let outcome: Outcome;
      try {
        outcome = await principalFor(db, bearerOf({ request }), opts, cache, hostOf({ request }));
      } catch (error) {
        // Thrown on, it would reach the HTTP adapter, which answers 500 text/plain with the stack.
        opts.onError?.(error);
        return endResponse(errorResponse(fetchAPI, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.'));
      }
      if ('principal' in outcome) early.set(request, outcome.principal);
      else if (outcome.refused === 'unavailable') endResponse(unavailableResponse(fetchAPI));
      else endResponse(errorResponse(fetchAPI, 401, 'UNAUTHENTICATED', REFUSAL_MESSAGES[outcome.refused], { 'www-authenticate': 'Bearer' }));
    },
  };
  /** The principal of a request or socket operation; throws UNAUTHENTICATED (401) or SERVICE_UNAVAILABLE (503). */
  const principal = async (initial: { request?: Request; connectionParams?: Record<string, unknown>; req?: IncomingMessage }): Promise<Principal> => {
    const known = initial.request && early.get(initial.request);
    if (known) return known;
    const outcome = await principalFor(db, bearerOf(initial), opts, cache, hostOf(initial));
    if ('principal' in outcome) return outcome.principal;
    throw outcome.refused === 'unavailable' ? serviceUnavailable() : unauthenticated(outcome.refused);
  };
  /** A socket's connection_init: its token id, or how to close it. */
  const socket = async (connection: {
    connectionParams: Record<string, unknown> | undefined;
    req: IncomingMessage;
  }): Promise<{ tokenId: string | null } | { refuse: { code: number; reason: string } }> => {
    const outcome = await principalFor(db, bearerOf(connection), opts, cache, hostOf(connection));
    return 'principal' in outcome ? { tokenId: outcome.principal.tokenId } : { refuse: SOCKET_REFUSALS[outcome.refused] };
  };
  /** A token was revoked or reassigned: its cached lookups go at once. */
  const forget = (tokenId: string) => cache.forget(tokenId);
  return { plugin, principal, socket, forget };
}
