/**
 * The bare live-events baseline: graphql-yoga on node:http with graphql-ws on the same port and
 * path (the recipe from yoga's documentation, as src/server/ws.ts wires it), an in-process yoga
 * createPubSub, a mutation that publishes to a topic and a subscription that listens to it,
 * filtered by dataset like entity-sync's `entityChanged(dataset:)`. Nothing else.
 */
import { setMaxListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createPubSub, createSchema, createYoga, filter, pipe } from 'graphql-yoga';
import { attachWebSocket } from '../src/server/ws.js';
import { listenOnLoopback } from './lib.js';

interface Changed {
  dataset: string;
  entityId: string;
  version: number;
}

export async function startPubSubServer(): Promise<{ url: string; stop(): Promise<void> }> {
  // A thousand subscribers listen on one topic: lift Node's 10-listener leak warning, as src/graphql/pubsub.ts does.
  const eventTarget = new EventTarget();
  setMaxListeners(0, eventTarget);
  const pubsub = createPubSub<{ entityChanged: [Changed] }>({ eventTarget });
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Query { ok: Boolean! }
        type EntityChangedEvent { dataset: String!, entityId: ID!, version: Int! }
        type Mutation { publish(dataset: String!, entityId: ID!, version: Int!): Int! }
        type Subscription { entityChanged(dataset: String!): EntityChangedEvent! }
      `,
      resolvers: {
        Query: { ok: () => true },
        Mutation: {
          publish: (_: unknown, args: Changed) => {
            pubsub.publish('entityChanged', { dataset: args.dataset, entityId: args.entityId, version: args.version });
            return args.version;
          },
        },
        Subscription: {
          entityChanged: {
            subscribe: (_: unknown, args: { dataset: string }) => pipe(pubsub.subscribe('entityChanged'), filter((e: Changed) => e.dataset === args.dataset)),
            resolve: (e: Changed) => e,
          },
        },
      },
    }),
    graphiql: false,
    landingPage: false,
    logging: 'warn',
  });
  const server: Server = createServer(yoga);
  // The same socket wiring as the service, so the comparison is of what lies behind it.
  const sockets = attachWebSocket(server, yoga, { keepAliveMs: 12_000, connectionInitWaitTimeoutMs: 3_000 });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}${yoga.graphqlEndpoint}`,
    stop: async () => {
      await sockets.close();
      await new Promise<void>((resolve) => {
        server.closeIdleConnections?.();
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      });
    },
  };
}

export const PUBLISH_MUTATION = 'mutation Publish($dataset: String!, $entityId: ID!, $version: Int!) { publish(dataset: $dataset, entityId: $entityId, version: $version) }';
