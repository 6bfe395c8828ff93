import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What one caller may hold in the server's memory at once (issue 17 item 8). A request body is
 * parsed into JSON, validated and planned: about 18 times its size in heap at the peak. With
 * `perToken` requests of `maxBodyBytes` in flight that is 4 × 4 MiB × 18 ≈ 290 MB, within a
 * 512 MB heap beside the service's own ~100 MB.
 */
export interface RequestLimits {
  /** Requests in flight per API token (per address without one); more are answered 429 at once (MAX_REQUESTS_PER_TOKEN). */
  perToken: number;
  /** Largest request body (and socket message), in bytes (MAX_BODY_BYTES). */
  maxBodyBytes: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { perToken: 4, maxBodyBytes: 4 * 1024 * 1024 };

/**
 * Counts a caller's requests from when they arrive to when their answer begins, before the body
 * is read: one over the bound is refused 429 TOO_MANY_REQUESTS (Retry-After: 1) without reading
 * its body, and its connection closed, so a burst of large batches from one token never sits in
 * memory together. Keyed by a hash of the Authorization header (the token, valid or not), or by
 * the address when there is none.
 */
export function requestLimiter(limits: RequestLimits) {
  const inFlight = new Map<string, number>();
  const keyOf = (req: IncomingMessage): string => {
    const auth = req.headers.authorization;
    return auth ? `t:${createHash('sha256').update(auth).digest('base64url')}` : `a:${req.socket.remoteAddress ?? ''}`;
  };
  return {
    /** True when the request may go on (and is counted until its response closes); false when it was answered 429. */
    admit(req: IncomingMessage, res: ServerResponse): boolean {
      const key = keyOf(req);
      const n = inFlight.get(key) ?? 0;
      if (n >= limits.perToken) {
        const body = JSON.stringify({
          errors: [{ message: `this API token has ${limits.perToken} requests in flight, as many as it may: send this one again when one has answered`, extensions: { code: 'TOO_MANY_REQUESTS' } }],
        });
        res.writeHead(429, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1', connection: 'close' });
        res.end(body);
        // Its body is never read: let the connection go once the answer is out.
        res.once('finish', () => req.socket.destroySoon?.());
        return false;
      }
      inFlight.set(key, n + 1);
      let counted = true;
      const release = () => {
        if (!counted) return;
        counted = false;
        const left = (inFlight.get(key) ?? 1) - 1;
        if (left <= 0) inFlight.delete(key);
        else inFlight.set(key, left);
      };
      // Counted until its answer begins: by then its body is parsed and its work done. An event
      // stream (SSE) begins its answer at once and lives on, bounded by the subscription limits.
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
      res.writeHead = ((...args: unknown[]) => {
        release();
        return writeHead(...args);
      }) as typeof res.writeHead;
      res.once('close', release);
      return true;
    },
  };
}
