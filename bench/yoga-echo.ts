/** The bare graphql-yoga baseline: a one-mutation schema on node:http, nothing else. */
import { createServer, type Server } from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';
import { listenOnLoopback } from './lib.js';

export async function startEchoServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Query { ok: Boolean! }
        type Mutation { echo(value: String!): String! }
      `,
      resolvers: { Query: { ok: () => true }, Mutation: { echo: (_: unknown, args: { value: string }) => args.value } },
    }),
    graphiql: false,
    landingPage: false,
    logging: 'warn',
  });
  const server: Server = createServer(yoga);
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}${yoga.graphqlEndpoint}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeIdleConnections?.();
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      }),
  };
}

export const ECHO_MUTATION = 'mutation Echo($value: String!) { echo(value: $value) }';
