import { setImmediate } from 'node:timers/promises';

/**
 * PGlite runs in this process and answers through microtasks only: without a macrotask turn
 * between changes, a 500-change batch would starve pings, /health, other requests and SIGTERM
 * for seconds. On Postgres this costs next to nothing (each query already waits for I/O).
 */
export const yieldToEventLoop = (): Promise<void> => setImmediate();
