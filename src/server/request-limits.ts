import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What one caller may hold in the server's memory at once (issue 17 item 8). A request body is
 * parsed into JSON, validated and planned: about 18 times its size in heap at the peak. So a
 * caller's requests in flight share a budget of body bytes, `perToken` full-size requests' worth:
 * 4 × 4 MiB × 18 ≈ 290 MB at worst, within a 512 MB heap beside the service's own ~100 MB. A
 * request weighs its declared length (a chunked one, whose length is unknown, the most a body may
 * be), and at least a 64th of the largest body: four large batches at once, but a dashboard's or a test's dozens
 * of small queries are never refused for being many.
 */
export interface RequestLimits {
  /** Full-size requests' worth of body bytes in flight per API token (per address without one); beyond, 429 at once (MAX_REQUESTS_PER_TOKEN). */
  perToken: number;
  /** Largest request body (and socket message), in bytes (MAX_BODY_BYTES). */
  maxBodyBytes: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { perToken: 4, maxBodyBytes: 4 * 1024 * 1024 };

/** What the smallest request weighs, as a part of the largest body (64 KiB of 4 MiB): its parse, its answer, the server's own state for it. */
const MIN_WEIGHT_PARTS = 64;

/** How long a refused request's body may go on arriving (read and dropped) before its connection is cut. */
const LINGER_MS = 10_000;

/**
 * Counts a caller's requests from when they arrive to when their answer begins, before the body
 * is read: one over the bound is refused 429 TOO_MANY_REQUESTS (Retry-After: 1) without keeping
 * its body (read and dropped as it arrives), and its connection closed, so a burst of large
 * batches from one token never sits in memory together. Keyed by a hash of the Authorization header (the token, valid or not), or by
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
      const declared = Number(req.headers['content-length']);
      const weight = Math.max(limits.maxBodyBytes / MIN_WEIGHT_PARTS, Math.min(limits.maxBodyBytes, Number.isFinite(declared) && req.headers['content-length'] !== undefined ? declared : req.method === 'GET' || req.method === 'HEAD' ? 0 : limits.maxBodyBytes));
      if (n > 0 && n + weight > limits.perToken * limits.maxBodyBytes) {
        const body = JSON.stringify({
          errors: [
            {
              message: `this API token has ${limits.perToken} full-size requests' worth in flight (${Math.round((limits.perToken * limits.maxBodyBytes) / 1048576)} MiB of bodies), as much as it may: send this one again when one has answered`,
              extensions: { code: 'TOO_MANY_REQUESTS' },
            },
          ],
        });
        // Node ends a `connection: close` answer's socket once the answer is out, and a socket
        // closed while its body still arrives resets the connection: a client still sending loses
        // the answer with it ("fetch failed", seen under load). So this socket only half-closes
        // after the answer, the rest of the body is read and dropped as it comes (nothing of it is
        // kept), and the socket is closed once the body is in, or after LINGER_MS whatever the client does.
        const socket = req.socket;
        socket.destroySoon = () => void socket.end();
        const linger = setTimeout(() => socket.destroy(), LINGER_MS);
        linger.unref();
        const close = () => {
          clearTimeout(linger);
          socket.destroy();
        };
        req.once('end', () => (res.writableFinished ? close() : res.once('finish', close)));
        socket.once('close', () => clearTimeout(linger));
        res.writeHead(429, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1', connection: 'close' });
        res.end(body);
        req.resume();
        return false;
      }
      inFlight.set(key, n + weight);
      let counted = true;
      const release = () => {
        if (!counted) return;
        counted = false;
        const left = (inFlight.get(key) ?? weight) - weight;
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
