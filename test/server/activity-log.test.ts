import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineRun, uniqueName } from '../helpers/domain.js';
import { socketClient, spawnService, waitUntil, type Service } from '../helpers/live.js';

/**
 * Issue 18 item 6: the service's log (pino JSON lines on stdout, LOG_LEVEL info by default) says
 * what happened, once, in counts: a periodic flush that forced held changes, a batch that
 * released a run or had changes refused, a refused socket, a token made or revoked. The real
 * entry point runs as a process; its stdout is read line by line.
 */

let service: Service;
beforeAll(async () => {
  service = await spawnService({ DATABASE_URL: '', DATA_DIR: 'memory://', HOLD_TIMEOUT_SECONDS: '2', FLUSH_INTERVAL_SECONDS: '0.3', LOG_LEVEL: 'info',
    // A webhook on loopback is refused at once and given up after a second: its FAILED line is quick to see.
    WEBHOOK_DENY_PRIVATE: 'true', WEBHOOK_RETRY_SECONDS: '1' });
});
afterAll(async () => {
  await service?.stop();
});

/** The JSON log lines of one kind (`event`), as pino wrote them. */
function logged(event: string): Record<string, unknown>[] {
  return service
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.event === event);
}

async function gql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await fetch(service.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: any; errors?: unknown };
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
}

const SUBMIT = 'mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome released { outcome } } } } }';
const submit = async (...c: unknown[]) => (await gql(SUBMIT, { c })).submitChanges.data as { outcome: string; released: unknown[] }[];

/** A dataset with one tree at version 1. */
async function tree(): Promise<{ dataset: string; entityId: string }> {
  const dataset = uniqueName('logs');
  await gql('mutation($n: String!) { createDataset(name: $n, properties: ["height", "health"]) { __typename } }', { n: dataset });
  const entityId = randomUUID();
  expect(await submit({ id: randomUUID(), dataset, entityId, action: 'CREATE', label: 'Oak', data: { height: 1 } })).toEqual([{ outcome: 'APPLIED', released: [] }]);
  return { dataset, entityId };
}

describe('info lines of what happened', () => {
  it('a periodic flush that forces a change and releases its successor logs one line with its counts; runs that force nothing log none', async () => {
    const { dataset, entityId } = await tree();
    // A run whose first change never comes: its second and third are held.
    const run = offlineRun(dataset, entityId, 1, { deviceId: 'tablet-7' });
    expect(await submit(run.update(2, { height: 2 }), run.update(3, { health: 'poor' }))).toEqual([
      { outcome: 'HELD', released: [] },
      { outcome: 'HELD', released: [] },
    ]);
    const [line] = await waitUntil(() => (logged('backlogFlush').length ? logged('backlogFlush') : null), 'the forced flush to be logged', 10_000);
    expect(line).toMatchObject({
      level: 30,
      name: 'entity-sync',
      event: 'backlogFlush',
      trigger: 'periodic',
      forced: 1,
      released: 1,
      refused: 0,
      oneByOneBatches: 0,
      ms: expect.any(Number),
      msg: 'backlog flush forced 1 held change(s), released 1, refused 0',
    });
    // Ten more runs find nothing to force and say nothing.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(logged('backlogFlush')).toHaveLength(1);
    // Counts only: no change, entity or value in it.
    expect(JSON.stringify(line)).not.toMatch(new RegExp(`${entityId}|${run.branchId}|poor|tablet-7`));
  });

  it('a batch that releases held changes, or has changes refused, says so once with counts and codes', async () => {
    const { dataset, entityId } = await tree();
    const run = offlineRun(dataset, entityId, 1, { deviceId: 'tablet-8' });
    expect(await submit(run.update(2, { height: 2 }))).toEqual([{ outcome: 'HELD', released: [] }]);
    const bad = { id: randomUUID(), dataset, entityId, action: 'UPDATE', baseVersion: 1, data: { colour: 'red' } };
    const answers = await submit(run.update(1, { height: 3 }), bad);
    expect(answers.map((a) => [a.outcome, a.released.length])).toEqual([
      ['APPLIED', 1],
      ['REJECTED', 0],
    ]);
    expect(logged('batch')).toEqual([
      expect.objectContaining({
        level: 30,
        changes: 2,
        applied: 1,
        held: 0,
        duplicate: 0,
        rejected: 1,
        released: 1,
        rejectedCodes: { UNKNOWN_PROPERTY: 1 },
        msg: 'a batch of 2 change(s) released 1 held change(s) and had 1 refused',
      }),
    ]);
    expect(service.output()).not.toContain('colour');
  });

  it('a refused socket logs its close code and reason, never the token; a burst is summed up', async () => {
    const wrong = `est_${'w'.repeat(43)}`;
    for (let i = 0; i < 3; i++) {
      const s = socketClient(service.url, { token: wrong });
      await waitUntil(() => s.closed.code, 'the server to close the socket');
      expect(s.closed).toEqual({ code: 4401, reason: 'Unauthorized: unknown API token' });
      await s.close();
    }
    // One line: the two refusals right after it are counted into the next one, 10 s on.
    expect(logged('socketRefused')).toEqual([
      expect.objectContaining({ level: 30, closeCode: 4401, closeReason: 'Unauthorized: unknown API token', msg: 'socket refused: 4401 Unauthorized: unknown API token' }),
    ]);
    expect(service.output()).not.toContain(wrong);
  });

  it('a token made and revoked through the API is logged by id and role, never its secret', async () => {
    const made = (
      await gql('mutation { createApiToken(name: "Tablet 9", role: COLLECTOR) { ... on MutationCreateApiTokenSuccess { data { secret token { id } } } } }')
    ).createApiToken.data as { secret: string; token: { id: string } };
    await gql('mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }', { id: made.token.id });
    await waitUntil(() => logged('tokenRevoked').length, 'the revocation to be logged');
    expect(logged('tokenCreated')).toEqual([
      expect.objectContaining({ level: 30, tokenId: made.token.id, role: 'collector', by: null, msg: `API token ${made.token.id} created (collector)` }),
    ]);
    expect(logged('tokenRevoked')).toEqual([expect.objectContaining({ level: 30, tokenId: made.token.id, msg: `API token ${made.token.id} revoked` })]);
    expect(service.output()).not.toContain(made.secret);
  });

  it('a webhook delivery that spent its retry time logs one line with the webhook, the event and the last error', async () => {
    const { dataset } = await tree();
    const hook = (
      await gql('mutation($d: [String!]) { createWebhook(url: "http://127.0.0.1:9/hook", datasets: $d, events: [ENTITY_CHANGED]) { ... on MutationCreateWebhookSuccess { data { secret webhook { id } } } } }', { d: [dataset] })
    ).createWebhook.data as { secret: string; webhook: { id: string } };
    expect(await submit({ id: randomUUID(), dataset, entityId: randomUUID(), action: 'CREATE', label: 'Elm', data: { height: 2 } })).toEqual([{ outcome: 'APPLIED', released: [] }]);
    await waitUntil(() => logged('webhookDeliveryFailed').length, 'the delivery to fail', 30_000);
    // Its retries said nothing; the FAILED delivery is said once, and not again while the worker polls on.
    await new Promise((r) => setTimeout(r, 1500));
    const lines = logged('webhookDeliveryFailed');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 30,
        webhookId: hook.webhook.id,
        eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        attempts: expect.any(Number),
        lastError: "the receiver's address 127.0.0.1 is not public (loopback, private, link-local…), and WEBHOOK_DENY_PRIVATE refuses it",
      }),
    ]);
    expect(lines[0]!.attempts).toBeGreaterThanOrEqual(1);
    expect(service.output()).not.toContain(hook.secret);
  });
});
