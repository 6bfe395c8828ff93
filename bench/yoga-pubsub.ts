/**
 * The bare live-events baseline: graphql-yoga on node:http with graphql-ws on the same port and
 * path (the recipe from yoga's documentation, as src/server/ws.ts wires it), an in-process yoga
 * createPubSub, a mutation that publishes to a topic and a subscription that listens to it,
 * filtered by dataset like entity-sync's `entityChanged(dataset:)`. Nothing else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecutionArgs } from 'graphql';
import { createPubSub, createSchema, createYoga, filter, pipe } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';

interface Changed {
  dataset: string;
  entityId: string;
  version: number;
}

export async function startPubSubServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const pubsub = createPubSub<{ entityChanged: [Changed] }>();
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
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
        const args = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
    12_000,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${yoga.graphqlEndpoint}`,
    stop: async () => {
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => {
        server.closeIdleConnections?.();
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      });
    },
  };
}

export const PUBLISH_MUTATION = 'mutation Publish($dataset: String!, $entityId: ID!, $version: Int!) { publish(dataset: $dataset, entityId: $entityId, version: $version) }';
