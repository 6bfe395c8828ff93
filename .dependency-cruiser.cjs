/**
 * The layers of DESIGN.md as enforced boundaries (run in CI by `npm run lint:layers`):
 * core imports nothing internal and no I/O; db imports core types only; sync imports db and
 * core; graphql imports sync, core and db; server imports graphql; client stays portable
 * (but for src/client/file-storage.ts, the documented Node-only storage adapter); the dashboard
 * is browser code that reaches the service only through GraphQL.
 */
const io = '^(node:)?(fs|net|http|https|child_process|dgram|dns|tls|worker_threads|cluster)$|^(postgres|@electric-sql/pglite|drizzle-orm|graphql-yoga|ws|pino)';
module.exports = {
  forbidden: [
    { name: 'core-is-pure', severity: 'error', from: { path: '^src/core' }, to: { path: ['^src/(db|sync|graphql|server|client)', io] } },
    { name: 'core-no-io-modules', severity: 'error', from: { path: '^src/core' }, to: { dependencyTypes: ['core', 'npm'] } },
    { name: 'db-only-core', severity: 'error', from: { path: '^src/db' }, to: { path: '^src/(sync|graphql|server|client)' } },
    { name: 'sync-below-graphql', severity: 'error', from: { path: '^src/sync' }, to: { path: '^src/(graphql|server|client)' } },
    { name: 'graphql-below-server', severity: 'error', from: { path: '^src/graphql' }, to: { path: '^src/(server|client|main)' } },
    { name: 'server-via-graphql', severity: 'error', from: { path: '^src/server' }, to: { path: '^src/(client|main)' } },
    { name: 'client-no-server-layers', severity: 'error', from: { path: '^src/client' }, to: { path: '^src/(db|sync|graphql|server|main)' } },
    // Browsers have no Node built-ins, sockets or drivers: all of that is injected.
    { name: 'client-portable', severity: 'error', from: { path: '^src/client', pathNot: '^src/client/file-storage\\.ts$' }, to: { dependencyTypes: ['core'] } },
    { name: 'client-no-server-packages', severity: 'error', from: { path: '^src/client' }, to: { path: io } },
    // Browser code that talks only GraphQL (DESIGN "Dashboard"): no server layers, no Node built-ins, no drivers. Its Vite config runs in Node.
    { name: 'dashboard-only-graphql', severity: 'error', from: { path: '^src/dashboard' }, to: { path: '^src/(core|db|sync|graphql|server|client|main)' } },
    { name: 'dashboard-portable', severity: 'error', from: { path: '^src/dashboard', pathNot: '^src/dashboard/vite\\.config\\.ts$' }, to: { dependencyTypes: ['core'] } },
    { name: 'dashboard-no-server-packages', severity: 'error', from: { path: '^src/dashboard' }, to: { path: io } },
    { name: 'no-circular', severity: 'error', from: { path: '^src' }, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
