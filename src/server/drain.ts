import type { ServerResponse } from 'node:http';

/**
 * The HTTP requests in flight, for a graceful shutdown. Once draining, every response not yet
 * started asks the client to close its connection (so keep-alive connections end after their
 * answer), and `drain()` resolves when every request has been answered, event streams too:
 * the shutdown ends live subscriptions first (Context.closing), so SSE streams finish, and a
 * mutation sent with `accept: text/event-stream` is waited for like any other.
 */
export function requestTracker() {
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  let settled: (() => void) | null = null;
  return {
    get draining(): boolean {
      return draining;
    },
    /** The requests not answered yet, as `METHOD path` (for the shutdown's warning; no query string, which may hold a GET's variables). */
    pending(): string[] {
      return [...inFlight].map((res) => `${res.req.method} ${(res.req.url ?? '').split('?')[0]!.slice(0, 100)}`);
    },
    add(res: ServerResponse): void {
      if (draining) res.setHeader('connection', 'close');
      inFlight.add(res);
      res.once('close', () => {
        inFlight.delete(res);
        if (inFlight.size === 0) settled?.();
      });
    },
    /** Starts draining; resolves once no request is in flight. */
    drain(): Promise<void> {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      if (inFlight.size === 0) return Promise.resolve();
      return new Promise((resolve) => (settled = resolve));
    },
  };
}
