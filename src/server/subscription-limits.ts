import { complexityFromQuery } from '@pothos/plugin-complexity';
import { GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../graphql/context.js';

/** How many live subscriptions one socket and one API token may hold (issue 17 item 7). */
export interface SubscriptionLimits {
  /** On one WebSocket (MAX_SUBSCRIPTIONS_PER_SOCKET). */
  perSocket: number;
  /** Over every socket and event stream of one token, on this instance; anonymous access counts as one token (MAX_SUBSCRIPTIONS_PER_TOKEN). */
  perToken: number;
}

export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = { perSocket: 100, perToken: 500 };

const refusal = (message: string, extensions: Record<string, unknown>) => ({ errors: [new GraphQLError(message, { extensions })] });

/**
 * Bounds what subscriptions may cost, on the socket and over SSE alike (both subscribe through
 * yoga's envelop). A subscription is priced when it is made, by what each event will cost (the
 * same Pothos complexity as a query: Pothos itself checks only when an event is resolved), and
 * refused QUERY_TOO_COMPLEX over the limit; beyond the count per socket or per token it is
 * refused TOO_MANY_SUBSCRIPTIONS. Each refusal answers that operation only: the socket and its
 * other subscriptions stay.
 */
export function subscriptionLimits(limits: SubscriptionLimits): Plugin<Context> & {
  /**
   * The client sent `complete` for this operation of this socket (src/server/ws.ts): its place is
   * free at once. graphql-ws would end its stream only once the subscription is set up, so a
   * client that ends one and starts another at once was refused for a place it had given back.
   */
  completedByClient(socket: object, operationId: string): void;
} {
  const perToken = new Map<string, number>();
  const perSocket = new WeakMap<object, number>();
  // Each socket's counted subscriptions by operation id, to release one when its client completes it.
  const bySocket = new WeakMap<object, Map<string, () => void>>();
  return {
    completedByClient(socket, operationId) {
      bySocket.get(socket)?.get(operationId)?.();
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const ctx = args.contextValue as Context & { socket?: object; operationId?: string; operationLive?: () => boolean };
      const operation = getOperationAST(args.document, args.operationName);
      if (!operation || operation.operation !== 'subscription') return;
      // Completed by its client while it was being set up: graphql-ws ends it as soon as it is
      // made, so it is neither refused nor counted.
      if (ctx.operationLive?.() === false) return;
      const cost = complexityFromQuery(args.document, { schema: args.schema, ctx, variables: (args.variableValues ?? {}) as Record<string, unknown> }).complexity;
      const max = ctx.limits.maxQueryComplexity;
      if (cost > max) {
        setResultAndStopExecution(
          refusal(`query cost limit of ${max} exceeded (found ${cost}): a subscription is priced by what each event costs`, { code: 'QUERY_TOO_COMPLEX', limit: { name: 'maxCost', max, found: cost } }),
        );
        return;
      }
      const token = ctx.principal.tokenId ?? 'anonymous';
      const socket = ctx.socket;
      if ((perToken.get(token) ?? 0) >= limits.perToken) {
        setResultAndStopExecution(refusal(`this API token holds ${limits.perToken} subscriptions, as many as it may: end one first`, { code: 'TOO_MANY_SUBSCRIPTIONS', limit: { name: 'perToken', max: limits.perToken } }));
        return;
      }
      if (socket && (perSocket.get(socket) ?? 0) >= limits.perSocket) {
        setResultAndStopExecution(refusal(`this socket holds ${limits.perSocket} subscriptions, as many as it may: end one first`, { code: 'TOO_MANY_SUBSCRIPTIONS', limit: { name: 'perSocket', max: limits.perSocket } }));
        return;
      }
      perToken.set(token, (perToken.get(token) ?? 0) + 1);
      if (socket) perSocket.set(socket, (perSocket.get(socket) ?? 0) + 1);
      let counted = true;
      const id = ctx.operationId;
      const release = () => {
        if (!counted) return;
        counted = false;
        const n = (perToken.get(token) ?? 1) - 1;
        if (n <= 0) perToken.delete(token);
        else perToken.set(token, n);
        if (socket) perSocket.set(socket, Math.max(0, (perSocket.get(socket) ?? 1) - 1));
        if (socket && id !== undefined) bySocket.get(socket)?.delete(id);
      };
      if (socket && id !== undefined) {
        const ops = bySocket.get(socket) ?? new Map<string, () => void>();
        bySocket.set(socket, ops.set(id, release));
      }
      // Counted until its stream ends, for whatever reason (complete, client gone, error).
      return {
        onSubscribeResult: ({ result }) => {
          if (!result || typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
            release();
            return undefined;
          }
          return { onEnd: release };
        },
        onSubscribeError: () => release(),
      };
    },
  };
}
