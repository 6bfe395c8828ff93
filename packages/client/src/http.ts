import { TransportError } from './errors.js';

/** GraphQL over HTTP POST: the fallback transport, and the one for queries. */

export interface GraphQLResponse {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
  /** The HTTP status, when the answer came over HTTP. */
  status?: number;
}

export type FetchLike = (input: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{ status: number; json(): Promise<unknown> }>;

export async function postGraphQL(fetchImpl: FetchLike, url: string, query: string, variables: Record<string, unknown>, timeoutMs: number, token?: string): Promise<GraphQLResponse> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: controller.signal,
    });
    let body: unknown;
    try {
      body = await res.json();
    } catch (error) {
      throw new TransportError(`HTTP ${res.status} without a GraphQL body`, { cause: error });
    }
    // A proxy's error page or a bare JSON value is not an answer of the server: resend later.
    if (typeof body !== 'object' || body === null || !('data' in body || 'errors' in body)) throw new TransportError(`HTTP ${res.status} without a GraphQL body`);
    return { ...(body as GraphQLResponse), status: res.status };
  } catch (error) {
    if (error instanceof TransportError) throw error;
    throw new TransportError(`HTTP request to ${url} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
