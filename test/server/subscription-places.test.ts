import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/core/types.js';
import { schema } from '../../src/graphql/schema.js';
import { subscriptionLimits } from '../../src/server/subscription-limits.js';

/**
 * The places of a socket's subscriptions (src/server/subscription-limits.ts) when its client ends
 * one while the server is still setting it up: graphql-ws ends such a stream only once it is made,
 * which under load came after the client's next subscription was judged, and refused it for the
 * place it had just given back. Driven here through the plugin's own hooks, so each order is exact
 * (over a real socket the order cannot be forced: a test there passed without the fix).
 */
const document = parse('subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version } }');

function harness(perSocket: number) {
  const plugin = subscriptionLimits({ perSocket, perToken: 100 });
  const socket = {};
  const live = new Set<string>();
  /** Starts operation `id` on the socket: its refusal's code, or null when it was let through (and counted, or not). */
  const subscribe = (id: string) => {
    let refused: string | null = null;
    const hooks = plugin.onSubscribe!({
      args: { schema, document, variableValues: { ds: 'trees' }, contextValue: { limits: DEFAULT_LIMITS, principal: { tokenId: 't1' }, socket, operationId: id, operationLive: () => live.has(id) } },
      setResultAndStopExecution: (result: { errors?: readonly { extensions?: { code?: string } }[] }) => {
        refused = result.errors?.[0]?.extensions?.code ?? 'REFUSED';
      },
    } as never) as { onSubscribeResult?: (p: { result: unknown }) => { onEnd?: () => void } | undefined } | undefined;
    return { refused, made: () => hooks?.onSubscribeResult?.({ result: { [Symbol.asyncIterator]: () => ({}) } })?.onEnd };
  };
  /** A subscription its client keeps, started. */
  const start = (id: string) => {
    live.add(id);
    return subscribe(id);
  };
  return { plugin, socket, live, subscribe, start };
}

describe('a place given back while its subscription is being set up', () => {
  it('ended by its client after it was counted, before it was made: the place is free at once, and its end later frees nothing more', () => {
    const h = harness(2);
    for (const id of ['a', 'b']) h.live.add(id);
    h.subscribe('a').made();
    const b = h.subscribe('b');
    expect(b.refused).toBeNull();
    // The client ends b; graphql-ws will end its stream only once it is made.
    h.live.delete('b');
    h.plugin.completedByClient(h.socket, 'b');
    const c = h.start('c');
    expect(c.refused).toBeNull();
    c.made();
    // b's stream is made and ended now: c keeps its place, and a third is still refused.
    b.made()?.();
    expect(h.start('d').refused).toBe('TOO_MANY_SUBSCRIPTIONS');
  });

  it('ended by its client before it was counted: it takes no place, and is not refused', () => {
    const h = harness(1);
    h.start('a').made();
    // b was ended before the server got to count it (the socket is full): let through uncounted.
    expect(h.subscribe('b').refused).toBeNull();
    expect(h.start('c').refused).toBe('TOO_MANY_SUBSCRIPTIONS');
  });

  it('a complete for an operation it does not know changes nothing', () => {
    const h = harness(1);
    h.start('a').made();
    h.plugin.completedByClient(h.socket, 'zzz');
    h.plugin.completedByClient({}, 'a');
    expect(h.start('b').refused).toBe('TOO_MANY_SUBSCRIPTIONS');
  });
});
