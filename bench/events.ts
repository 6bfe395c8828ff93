/**
 * Issue 21's bench section, run by bench/run.ts (alone with BENCH_ONLY=events):
 * - events per second across two instances: a graphql-ws subscriber on instance A counts the
 *   entityChanged events of changes submitted through instance B, the bus between them Postgres
 *   LISTEN/NOTIFY or Redis (EVENT_BUS), each instance a process of its own (bench/live-server.ts);
 * - submission throughput with 100 webhooks registered for the dataset beside a dataset with none
 *   (the outbox write in the change's transaction is the difference; deliveries are left to other
 *   instances, so the measured server does only the write path).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { concurrentLoad, fmt, gql, updateData, type LiveServerCommand, type LiveServerReply } from './lib.js';
import type { Row } from './report.js';
import { createDataset, createEntities, DEVICE } from './service.js';

export interface EventSettings {
  /** Clients submitting single changes at once through instance B. */
  eventClients: number;
  eventsPerRound: number;
  eventRounds: number;
  hookClients: number;
  hookBatch: number;
  hookBatchesPerRound: number;
  hookRounds: number;
  webhooks: number;
}

export interface EventFigures {
  notify: number;
  redis: number;
  none: number;
  hooked: number;
  /** Outbox rows written per side (the check that the write path did what is claimed). */
  outbox: { none: number; hooked: number };
  changes: { none: number; hooked: number };
}

type Child = { send(cmd: LiveServerCommand): Promise<LiveServerReply> };
const SUBMIT_ONE = 'mutation($c: ChangeInput!) { submitChange(change: $c) { outcome version } }';
const SUBMIT = 'mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome version } } } }';
const SUBSCRIPTION = 'subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version } }';

/** A subscriber on `url` counting entityChanged events of `dataset`. */
async function subscriber(url: string, dataset: string) {
  let count = 0;
  let waiters: { n: number; resolve: () => void }[] = [];
  let connected!: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, lazy: false, retryAttempts: 0, on: { connected: () => connected() } });
  client.subscribe(
    { query: SUBSCRIPTION, variables: { ds: dataset } },
    {
      next: () => {
        count++;
        waiters = waiters.filter((w) => (count >= w.n ? (w.resolve(), false) : true));
      },
      error: (e) => console.error('bench subscriber', e),
      complete: () => {},
    },
  );
  await ready;
  return {
    get count() {
      return count;
    },
    until: (n: number) => (count >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    close: () => client.dispose(),
  };
}

export async function eventsPhase(opts: {
  databaseUrl: string;
  redisUrl: string;
  sql: postgres.Sql;
  settings: EventSettings;
  startChild: () => Child & { child: { connected: boolean } };
  log: (s: string) => void;
}): Promise<EventFigures> {
  const s = opts.settings;
  const started: Child[] = [];
  const start = async (extra: Partial<Extract<LiveServerCommand, { cmd: 'start' }>>) => {
    const child = opts.startChild();
    started.push(child);
    return (await child.send({ cmd: 'start', kind: 'entity-sync', databaseUrl: opts.databaseUrl, deliver: false, ...extra })).url!;
  };
  try {
    // Part 1: events across two instances, NOTIFY and Redis, rounds alternating.
    const [notifyA, notifyB, redisA, redisB] = [await start({}), await start({}), await start({ redisUrl: opts.redisUrl }), await start({ redisUrl: opts.redisUrl })];
    const dataset = `bench_events_${randomUUID().slice(0, 8)}`;
    await createDataset(notifyB!, ['count', 'note', 'status'], dataset);
    const entities = await createEntities(notifyB!, s.eventClients, s.eventClients, 'events', dataset);
    const versions = new Map(entities.map((id) => [id, 1]));
    const sides = { notify: { a: notifyA!, b: notifyB! }, redis: { a: redisA!, b: redisB! } };
    const subs = { notify: await subscriber(sides.notify.a, dataset), redis: await subscriber(sides.redis.a, dataset) };
    const rates = { notify: [] as number[], redis: [] as number[] };
    let n = 0;
    const round = async (side: 'notify' | 'redis', count: number) => {
      const sub = subs[side];
      const target = sub.count + count;
      const t0 = performance.now();
      await concurrentLoad(s.eventClients, count, async (worker) => {
        const id = entities[worker]!;
        const base = versions.get(id)!;
        const change = { id: randomUUID(), deviceId: DEVICE, dataset, entityId: id, action: 'UPDATE', baseVersion: base, data: updateData(n++) };
        const r = await gql<{ submitChange: { outcome: string; version: number } }>(sides[side].b, SUBMIT_ONE, { c: change });
        if (r.submitChange.outcome !== 'APPLIED') throw new Error(`bench events: ${JSON.stringify(r.submitChange)}`);
        versions.set(id, base + 1);
      });
      // Both subscribers hear every change (each instance pair shares the database, not the bus).
      await sub.until(target);
      return count / ((performance.now() - t0) / 1000);
    };
    await round('notify', s.eventClients * 5);
    await round('redis', s.eventClients * 5);
    for (let i = 0; i < s.eventRounds; i++) {
      for (const side of i % 2 === 0 ? (['notify', 'redis'] as const) : (['redis', 'notify'] as const)) rates[side].push(await round(side, s.eventsPerRound));
    }
    await subs.notify.close();
    await subs.redis.close();
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
    opts.log(`events across two instances: NOTIFY ${Math.round(mean(rates.notify))}/s, Redis ${Math.round(mean(rates.redis))}/s`);

    // Part 2: submissions into a dataset with 100 webhooks beside one with none, same server.
    const server = sides.notify.b;
    const none = `bench_hooks_none_${randomUUID().slice(0, 6)}`;
    const hooked = `bench_hooks_100_${randomUUID().slice(0, 6)}`;
    const pools: Record<'none' | 'hooked', { dataset: string; ids: string[][]; versions: Map<string, number> }> = {} as never;
    for (const [key, name] of [['none', none], ['hooked', hooked]] as const) {
      await createDataset(server, ['count', 'note', 'status'], name);
      const ids: string[][] = [];
      for (let c = 0; c < s.hookClients; c++) ids.push(await createEntities(server, s.hookBatch, s.hookBatch, `hooks ${key}`, name));
      pools[key] = { dataset: name, ids, versions: new Map(ids.flat().map((id) => [id, 1])) };
    }
    for (let i = 0; i < s.webhooks; i++) {
      await gql(server, 'mutation($u: String!, $d: [String!]) { createWebhook(url: $u, datasets: $d, events: [ENTITY_CHANGED, CONFLICT_DETECTED, CHANGE_HELD, BACKLOG_FLUSHED, CONFLICT_RESOLVED, CHANGE_REJECTED]) { __typename } }', {
        u: `http://127.0.0.1:9/bench-${i}`,
        d: [hooked],
      });
    }
    const changes = { none: 0, hooked: 0 };
    const batchRound = async (key: 'none' | 'hooked') => {
      const pool = pools[key];
      const t0 = performance.now();
      await Promise.all(
        pool.ids.map(async (ids) => {
          for (let k = 0; k < s.hookBatchesPerRound; k++) {
            const batch = ids.map((id) => ({ id: randomUUID(), deviceId: DEVICE, dataset: pool.dataset, entityId: id, action: 'UPDATE', baseVersion: pool.versions.get(id)!, data: updateData(n++) }));
            const r = await gql<{ submitChanges: { data: { outcome: string }[] } }>(server, SUBMIT, { c: batch });
            if (r.submitChanges.data.some((x) => x.outcome !== 'APPLIED')) throw new Error('bench webhooks: a change was not applied');
            for (const id of ids) pool.versions.set(id, pool.versions.get(id)! + 1);
          }
        }),
      );
      const count = s.hookClients * s.hookBatch * s.hookBatchesPerRound;
      changes[key] += count;
      return count / ((performance.now() - t0) / 1000);
    };
    await batchRound('none');
    await batchRound('hooked');
    changes.none = 0;
    changes.hooked = 0;
    const hookRates = { none: [] as number[], hooked: [] as number[] };
    for (let i = 0; i < s.hookRounds; i++) {
      for (const key of i % 2 === 0 ? (['none', 'hooked'] as const) : (['hooked', 'none'] as const)) hookRates[key].push(await batchRound(key));
    }
    const [rows] = await opts.sql<{ none: number; hooked: number }[]>`select
      (select count(*)::int from webhook_events where dataset_name = ${none}) as none,
      (select count(*)::int from webhook_events where dataset_name = ${hooked}) as hooked`;
    // Its 100 webhooks, their outbox and deliveries go: otherwise the next sections run beside the
    // dispatch and retries of a million deliveries to a closed port (the scale section's baseline
    // was 60% slower). Truncated, not deleted: deleting the webhooks cascaded to every delivery
    // made so far, a long statement whose row locks held the delivery worker's shutdown past 10 s.
    // Only this section makes webhooks in the bench's database.
    await opts.sql`truncate webhook_deliveries, webhook_events`;
    await opts.sql`delete from webhooks where url like 'http://127.0.0.1:9/bench-%'`;
    const figures: EventFigures = {
      notify: mean(rates.notify),
      redis: mean(rates.redis),
      none: mean(hookRates.none),
      hooked: mean(hookRates.hooked),
      outbox: { none: rows!.none, hooked: rows!.hooked },
      changes,
    };
    opts.log(`submissions: ${Math.round(figures.none)}/s without webhooks, ${Math.round(figures.hooked)}/s with ${s.webhooks}`);
    return figures;
  } finally {
    for (const child of started) await child.send({ cmd: 'exit' }).catch(() => {});
  }
}

export function eventRows(f: EventFigures, s: EventSettings): Row[] {
  const ratio = (a: number, b: number) => (b > 0 ? fmt.ratio(a / b) : 'n/a');
  return [
    [`events across two instances, ${s.eventClients} clients submitting on B, a subscriber on A: events/s through Redis (vs NOTIFY)`, fmt.rate(f.redis), fmt.rate(f.notify), ratio(f.redis, f.notify), '', ''],
    [
      `submitChanges, ${s.hookClients} clients × ${s.hookBatch} updates/batch, ${s.webhooks} webhooks on the dataset: changes/s (vs none)`,
      fmt.rate(f.hooked),
      fmt.rate(f.none),
      ratio(f.hooked, f.none),
      '',
      '',
    ],
    [`outbox rows written for the timed changes (+ warm-up): with ${s.webhooks} webhooks (vs none)`, String(f.outbox.hooked), String(f.outbox.none), '', '', ''],
  ];
}

export function eventsDescription(s: EventSettings): string {
  return `- Events (bench/events.ts): four entity-sync instances on the bench database, each a process of its own (bench/live-server.ts):
  two whose bus is Postgres LISTEN/NOTIFY, two whose bus is Redis (EVENT_BUS, the local Redis). On each pair, a graphql-ws
  subscriber on A (\`entityChanged(dataset:)\`) while ${s.eventClients} clients send single submitChange updates over HTTP to B, each to its own
  entity; a round of ${s.eventsPerRound} ends when A's subscriber has had every event; events/s = changes / that time. One warm-up round each,
  then ${s.eventRounds} rounds per side, the order alternating.
- Webhooks: one of those NOTIFY instances (its webhook deliveries off: another instance would send them) takes batches of ${s.hookBatch}
  in-order updates from ${s.hookClients} clients into a dataset with ${s.webhooks} webhooks registered (every event type) and into one with none,
  ${s.hookBatchesPerRound} batches per client per round, ${s.hookRounds} rounds alternating after one warm-up each. The difference is the outbox
  statement in each batch's transaction: one row per event when some webhook wants it (the fan-out to ${s.webhooks} deliveries happens
  later, outside the write path), none otherwise.`;
}
