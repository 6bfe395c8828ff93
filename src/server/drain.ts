import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The HTTP requests in flight, for a graceful shutdown. Once draining, every response not yet
 * started asks the client to close its connection (so keep-alive connections end after their
 * answer), and `drain()` resolves when every request has been answered. Event streams (SSE
 * subscriptions) are not waited for: they never end on their own, so the shutdown cuts them
 * after the rest and their clients reconnect elsewhere.
 */
export function requestTracker() {
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  let settled: (() => void) | null = null;
  const isStream = (req: IncomingMessage) => (req.headers.accept ?? '').includes('text/event-stream');
  return {
    get draining(): boolean {
      return draining;
    },
    add(req: IncomingMessage, res: ServerResponse): void {
      if (draining) res.setHeader('connection', 'close');
      if (isStream(req)) return;
      inFlight.add(res);
      res.once('close', () => {
        inFlight.delete(res);
        if (inFlight.size === 0) settled?.();
      });
    },
    /** Starts draining; resolves once no request but the event streams is in flight. */
    drain(): Promise<void> {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      if (inFlight.size === 0) return Promise.resolve();
      return new Promise((resolve) => (settled = resolve));
    },
  };
}
