/**
 * The two ways a request of the client fails. Neither drops anything from the outbox: a
 * change leaves it only when the server answered for that change (DESIGN "Client library").
 */

/** The server could not be reached, did not answer in time, or answered with something other than GraphQL. Always worth retrying. */
export class TransportError extends Error {
  /** The WebSocket close code when a socket closed (4401: the token was refused). */
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown; closeCode?: number; closeReason?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransportError';
    this.closeCode = options?.closeCode;
    this.closeReason = options?.closeReason;
  }
}

/** Codes of whole-request failures that say "later" rather than "no". */
const RETRYABLE = new Set(['SERVICE_UNAVAILABLE', 'SHUTTING_DOWN', 'INTERNAL_SERVER_ERROR', 'NO_RESULTS', 'NO_DATA']);

/**
 * A failure the server reported for a whole request (a GraphQL error or a DomainError), not a
 * transport failure. `retryable` tells an app whether calling sync() again later can help:
 * true for SERVICE_UNAVAILABLE (the database is out of reach), a server shutting down, an
 * unexpected server error or any HTTP 5xx; false for UNAUTHENTICATED (the token is unknown or
 * revoked: the client stops using it) and other refusals.
 */
export class SyncError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly code: string,
    message: string,
    /** The HTTP status of the answer, when it came over HTTP. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SyncError';
    this.retryable = code !== 'UNAUTHENTICATED' && (RETRYABLE.has(code) || (status !== undefined && status >= 500));
  }
}
