import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError } from 'graphql-yoga';
import { isDatabaseUnreachable } from '../db/client.js';

/** How long a client is asked to wait before it tries again when the database cannot be reached. */
const RETRY_AFTER_SECONDS = 5;

export const UNAVAILABLE_MESSAGE = 'the database cannot be reached: try again later';

/** The database cannot be reached: a 503 the client may retry, in the GraphQL envelope like every other refusal. */
export function serviceUnavailable(): GraphQLError {
  return new GraphQLError(UNAVAILABLE_MESSAGE, {
    extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } } },
  });
}

/** The 413 of a body over `maxBodyBytes`, whether its size was announced (content-length) or found while reading it (chunked). */
export function tooLarge(maxBodyBytes: number, length?: number): GraphQLError {
  return new GraphQLError(`request body ${length !== undefined ? `of ${length} bytes ` : ''}exceeds ${maxBodyBytes}`, {
    extensions: { code: 'TOO_LARGE', http: { status: 413 } },
  });
}

/**
 * Yoga's maskedErrors.maskError: an unexpected error stays masked ("Unexpected error.",
 * INTERNAL_SERVER_ERROR; yoga logs the original), but one that says the database cannot be
 * reached becomes SERVICE_UNAVAILABLE with HTTP 503, so the client knows to try again rather
 * than that its request was at fault; neither carries the SQL, its parameters or a stack.
 */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  if (isDatabaseUnreachable(error)) return serviceUnavailable();
  return yogaMaskError(error, message, isDev);
}

/** A refusal answered before yoga parses anything: the GraphQL envelope with one coded error. */
export function errorResponse(
  fetchAPI: { Response: typeof Response },
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

export function unavailableResponse(fetchAPI: { Response: typeof Response }): Response {
  return errorResponse(fetchAPI, 503, 'SERVICE_UNAVAILABLE', UNAVAILABLE_MESSAGE, { 'retry-after': String(RETRY_AFTER_SECONDS) });
}
