import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService, waitUntil, type Service } from '../helpers/live.js';

/**
 * Issue 17 item 8: batches use about 18 times their size in memory, so one collector sending many
 * large batches at once took the server to gigabytes. The service runs here as its own process
 * under a 512 MB heap (--max-old-space-size=512), and one collector token sends the worst load the
 * limits allow, many times over: 20 batches at once, each just under the body limit. It keeps
 * answering (/health, and each batch stored or refused 429 TOO_MANY_REQUESTS), and stays up.
 */
let service: Service;
let collector: string;
const DS = 'plots';

async function gql(token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(service.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as { data?: any; errors?: { extensions?: { code?: string } }[] } };
}

beforeAll(async () => {
  // On PGlite in memory on both back ends: the run's Postgres database has tokens already, and this needs its first admin token.
  service = await spawnService({ DATABASE_URL: '', DATA_DIR: 'memory://', ANONYMOUS_ROLE: '', NODE_OPTIONS: '--max-old-space-size=512' }, 120_000);
  const admin = (await waitUntil(() => /admin token[^\n]*\n(\S+)/.exec(service.output()), 'the first admin token', 10_000))[1]!;
  expect((await gql(admin, `mutation { createDataset(name: "${DS}", properties: ["note"]) { __typename } }`)).status).toBe(200);
  const made = await gql(admin, `mutation($d: [String!]) { createApiToken(name: "tablet", role: COLLECTOR, datasets: $d) { ... on MutationCreateApiTokenSuccess { data { secret } } } }`, { d: [DS] });
  collector = made.body.data.createApiToken.data.secret;
}, 180_000);
afterAll(async () => {
  await service?.stop();
});

describe('the worst allowed load of one collector fits a 512 MB heap', () => {
  it('20 batches of just under 4 MiB at once, three times: each stored or refused 429, and /health answers', async () => {
    // 64 changes of ~62 KiB: each under the 64 KiB change limit, the batch under the 4 MiB body limit.
    const note = 'n'.repeat(62 * 1024);
    const batch = () => Array.from({ length: 64 }, () => ({ id: randomUUID(), dataset: DS, entityId: randomUUID(), action: 'CREATE', label: 'Plot', data: { note } }));
    const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { __typename ... on MutationSubmitChangesSuccess { data { outcome } } } }`;
    expect(JSON.stringify({ query: SUBMIT, variables: { c: batch() } }).length).toBeLessThan(4 * 1024 * 1024);
    const statuses: number[] = [];
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => gql(collector, SUBMIT, { c: batch() }).catch((e: Error) => ({ status: 0, body: { data: undefined, errors: [{ extensions: { code: e.message } }] } }))));
      for (const a of answers) {
        statuses.push(a.status);
        if (a.status === 200) expect(a.body.data.submitChanges.data.every((r: { outcome: string }) => r.outcome === 'APPLIED')).toBe(true);
        else expect({ status: a.status, codes: a.body.errors?.map((e) => e.extensions?.code) }).toEqual({ status: 429, codes: ['TOO_MANY_REQUESTS'] });
      }
      expect((await fetch(new URL('/health', service.url))).status).toBe(200);
    }
    // Some were stored, the rest refused quickly; the process never went down.
    expect(statuses).toContain(200);
    expect(statuses).toContain(429);
    expect(service.output()).not.toMatch(/heap out of memory|the process ended by/);
  }, 300_000);
});
