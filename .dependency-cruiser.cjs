/**
 * The layers of DESIGN.md as enforced boundaries (run in CI by `npm run lint:layers`):
 * core imports nothing internal and no I/O; db imports core types only; sync imports db and
 * core; graphql imports sync, core and db; server imports graphql; the client library (its own
 * package, packages/client) imports of the service only src/core and of npm only its declared
 * graphql-ws, and stays portable (but for its file-storage.ts, the documented Node-only storage
 * adapter); nothing of the service imports the client; the dashboard is browser code that
 * reaches the service only through GraphQL.
 */
const io = '^(node:)?(fs|net|http|https|child_process|dgram|dns|tls|worker_threads|cluster)$|^(postgres|@electric-sql/pglite|drizzle-orm|graphql-yoga|ws|pino)';
module.exports = {
  forbidden: [
    { name: 'core-is-pure', severity: 'error', from: { path: '^src/core' }, to: { path: ['^src/(db|sync|graphql|server)', '^packages/', io] } },
    { name: 'core-no-io-modules', severity: 'error', from: { path: '^src/core' }, to: { dependencyTypes: ['core', 'npm'] } },
    { name: 'db-only-core', severity: 'error', from: { path: '^src/db' }, to: { path: '^src/(sync|graphql|server)' } },
    { name: 'sync-below-graphql', severity: 'error', from: { path: '^src/sync' }, to: { path: '^src/(graphql|server)' } },
    { name: 'graphql-below-server', severity: 'error', from: { path: '^src/graphql' }, to: { path: '^src/(server|main)' } },
    { name: 'server-via-graphql', severity: 'error', from: { path: '^src/server' }, to: { path: '^src/main' } },
    // The service and the client library are two packages: the service never imports the client.
    { name: 'service-not-client', severity: 'error', from: { path: '^src' }, to: { path: '^packages/' } },
    // What the client's build bundles of the service is the pure core, nothing else.
    { name: 'client-only-core', severity: 'error', from: { path: '^packages/client/src' }, to: { path: '^src/', pathNot: '^src/core/' } },
    // Of npm, only what packages/client/package.json declares (Node built-ins are the next rules' business).
    { name: 'client-declared-packages', severity: 'error', from: { path: '^packages/client/src' }, to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'], pathNot: '^node_modules/graphql-ws/' } },
    // Browsers have no Node built-ins, sockets or drivers: all of that is injected.
    { name: 'client-portable', severity: 'error', from: { path: '^packages/client/src', pathNot: '^packages/client/src/file-storage\\.ts$' }, to: { dependencyTypes: ['core'] } },
    // The Node-only file storage is an entry of its own (@entity-sync/client/file-storage): the portable entry never reaches it.
    { name: 'client-file-storage-apart', severity: 'error', from: { path: '^packages/client/src', pathNot: '^packages/client/src/file-storage\\.ts$' }, to: { path: '^packages/client/src/file-storage\\.ts$' } },
    { name: 'client-no-server-packages', severity: 'error', from: { path: '^packages/client/src' }, to: { path: io } },
    // Browser code that talks only GraphQL (DESIGN "Dashboard"): no server layers, no Node built-ins, no drivers. Its Vite config runs in Node.
    { name: 'dashboard-only-graphql', severity: 'error', from: { path: '^src/dashboard' }, to: { path: ['^src/(core|db|sync|graphql|server|main)', '^packages/'] } },
    { name: 'dashboard-portable', severity: 'error', from: { path: '^src/dashboard', pathNot: '^src/dashboard/vite\\.config\\.ts$' }, to: { dependencyTypes: ['core'] } },
    { name: 'dashboard-no-server-packages', severity: 'error', from: { path: '^src/dashboard' }, to: { path: io } },
    { name: 'no-circular', severity: 'error', from: { path: '^(src|packages/client/src)' }, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
