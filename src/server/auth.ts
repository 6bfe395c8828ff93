import type { IncomingMessage } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Principal, Role } from '../core/auth.js';
import { ERROR_CODES } from '../core/types.js';
import type { Db } from '../db/client.js';
import { authenticate } from '../sync/tokens.js';

export interface AuthOptions {
  /**
   * The role of requests that carry no token, for local development only. Unset (the default):
   * a request without a token is refused with 401. A wrong or revoked token is always refused.
   */
  anonymousRole?: Role | null;
  /** How often each instance re-reads recent revocations, in case an event was lost (default 10). */
  revocationSweepSeconds?: number;
}

/** The bearer secret of an HTTP request, a socket's connection_init payload, or its upgrade request. */
function bearerOf(source: { request?: Request; connectionParams?: Record<string, unknown> | undefined; req?: IncomingMessage }): string | null {
  const params = source.connectionParams;
  const fromParams = params && (params.authorization ?? params.Authorization);
  const header = typeof fromParams === 'string' ? fromParams : (source.request?.headers.get('authorization') ?? source.req?.headers.authorization ?? null);
  if (header === null) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : '';
}

function unauthenticated(): GraphQLError {
  return new GraphQLError(ERROR_CODES.UNAUTHENTICATED, {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
  });
}

/** Who a request is; throws UNAUTHENTICATED (401) when it is nobody the server knows. */
async function principalFor(db: Db, secret: string | null, opts: AuthOptions): Promise<Principal> {
  if (secret === null) {
    if (opts.anonymousRole) return { tokenId: null, role: opts.anonymousRole, deviceId: null, datasets: null };
    throw unauthenticated();
  }
  const principal = await authenticate(db, secret);
  if (!principal) throw unauthenticated();
  return principal;
}

/**
 * Authentication for yoga: POSTs are authenticated before their body is read, so a client that
 * is nobody (no token, a wrong or revoked one) cannot make the server buffer and parse a 32 MiB
 * body or probe the schema with validation errors. The principal found there is the context's;
 * other requests (GET, socket operations) are authenticated when their context is built.
 */
export function authenticator(db: Db, opts: AuthOptions) {
  const early = new WeakMap<Request, Principal>();
  const plugin: Plugin = {
    async onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== 'POST') return;
      try {
        early.set(request, await principalFor(db, bearerOf({ request }), opts));
      } catch (error) {
        if (!(error instanceof GraphQLError)) throw error;
        endResponse(
          new fetchAPI.Response(JSON.stringify({ errors: [{ message: error.message, extensions: { code: 'UNAUTHENTICATED' } }] }), {
            status: 401,
            headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer' },
          }),
        );
      }
    },
  };
  /** The principal of a request or socket operation; throws UNAUTHENTICATED. */
  const principal = async (initial: { request?: Request; connectionParams?: Record<string, unknown>; req?: IncomingMessage }): Promise<Principal> =>
    (initial.request && early.get(initial.request)) ?? principalFor(db, bearerOf(initial), opts);
  return { plugin, principal };
}
