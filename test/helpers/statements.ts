import type { Database } from '../../src/db/client.js';

/**
 * Records the text of every statement the app sends to its database until `stop()`: work is
 * judged by the statements it causes, which is exact, rather than by a time, which is not.
 */
export function recordStatements(database: Database): { stop: () => string[] } {
  const seen: string[] = [];
  if (database.pglite) {
    const client = database.pglite;
    const query = client.query.bind(client);
    client.query = ((text: string, ...rest: unknown[]) => {
      seen.push(text);
      return (query as (...a: unknown[]) => unknown)(text, ...rest);
    }) as typeof client.query;
    return { stop: () => ((client.query = query), seen) };
  }
  const client = database.sql!;
  const unsafe = client.unsafe.bind(client);
  client.unsafe = ((text: string, ...rest: unknown[]) => {
    seen.push(text);
    return (unsafe as (...a: unknown[]) => unknown)(text, ...rest);
  }) as typeof client.unsafe;
  return { stop: () => ((client.unsafe = unsafe), seen) };
}
