import type { TadaDocumentNode } from 'gql.tada';
import { print } from 'graphql';

/** The service's GraphQL endpoint: the dashboard is served by the service itself, on its own origin. */
export const GRAPHQL_URL = new URL('/graphql', window.location.href).toString();
export const GRAPHQL_WS_URL = GRAPHQL_URL.replace(/^http/, 'ws');

export type ApiErrorKind = 'unauthenticated' | 'forbidden' | 'network' | 'failed';

/** A failed request, worded for the person in front of the screen. */
export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
  ) {
    super(message);
  }
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

const MESSAGES: Record<Exclude<ApiErrorKind, 'failed'>, string> = {
  unauthenticated: 'The service did not accept this token: it is wrong, incomplete or has been revoked.',
  forbidden: 'This token may not see or do this.',
  network: 'The service cannot be reached. Check that it is running, then try again.',
};

/** One query or mutation over HTTP POST with the token; GraphQL errors become an ApiError. */
export async function request<R, V>(token: string, document: TadaDocumentNode<R, V>, variables?: V): Promise<R> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: print(document), variables }),
    });
  } catch {
    throw new ApiError('network', MESSAGES.network);
  }
  if (response.status === 401) throw new ApiError('unauthenticated', MESSAGES.unauthenticated);
  let body: GraphQLResponse<R>;
  try {
    body = (await response.json()) as GraphQLResponse<R>;
  } catch {
    throw new ApiError('failed', `The service answered ${response.status} without a readable body.`);
  }
  const errors = body.errors ?? [];
  if (errors.some((e) => e.extensions?.code === 'FORBIDDEN')) throw new ApiError('forbidden', MESSAGES.forbidden);
  if (errors.length > 0 || !body.data) throw new ApiError('failed', errors.map((e) => e.message).join('; ') || `The service answered ${response.status}.`);
  return body.data;
}
