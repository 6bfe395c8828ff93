/**
 * The subscriber process, started by bench/run.ts with an IPC channel: it holds the graphql-ws
 * clients (1,000 sockets per server, one `entityChanged(dataset:)` subscription each) and also
 * sends the mutations, so the HTTP response time and every event arrival are read on one clock.
 * Living apart from both servers, its sockets' client-side memory counts in neither server.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { gql, serveCommands, updateData, type SubscriberCommand, type SubscriberReply, type SubscriberTarget } from './lib.js';
import { DATASET, DEVICE } from './service.js';
import { PUBLISH_MUTATION } from './yoga-pubsub.js';

const SUBSCRIPTION = 'subscription Changed($dataset: String!) { entityChanged(dataset: $dataset) { dataset entityId version } }';
const SUBMIT_CHANGE = 'mutation SubmitOne($change: ChangeInput!) { submitChange(change: $change) { outcome version } }';

interface Group {
  target: SubscriberTarget;
  clients: Client[];
  /** The event being waited for, and when each subscriber got it (performance.now()). */
  waiting: { version: number; arrivals: number[]; done(): void } | null;
  /** Subscribers that have received at least one event. */
  live: Set<number>;
  errors: unknown[];
}

const groups = new Map<string, Group>();
/** The version of the target entity per server kind (groups of one kind share the entity). */
const versions = new Map<SubscriberTarget['kind'], number>();

function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws');
}

async function open(target: SubscriberTarget, count: number, wave: number): Promise<void> {
  const g: Group = { target, clients: [], waiting: null, live: new Set(), errors: [] };
  if (!versions.has(target.kind)) versions.set(target.kind, target.version);
  groups.set(target.name, g);
  for (let i = 0; i < count; i += wave) {
    const connected: Promise<void>[] = [];
    for (let k = i; k < Math.min(count, i + wave); k++) {
      let onConnected!: () => void;
      connected.push(new Promise<void>((resolve) => (onConnected = resolve)));
      const client = createClient({
        url: wsUrl(target.url),
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        onNonLazyError: (e) => g.errors.push(e),
        on: { connected: () => onConnected(), error: (e) => g.errors.push(e) },
      });
      client.subscribe<{ entityChanged: { version: number } }>(
        { query: SUBSCRIPTION, variables: { dataset: DATASET } },
        {
          next: (r) => {
            const at = performance.now();
            g.live.add(k);
            const w = g.waiting;
            if (r.errors?.length) g.errors.push(r.errors);
            if (w && r.data?.entityChanged.version === w.version) {
              w.arrivals.push(at);
              if (w.arrivals.length === count) w.done();
            }
          },
          error: (e) => g.errors.push(e),
          complete: () => {},
        },
      );
      g.clients.push(client);
    }
    await Promise.race([Promise.all(connected), new Promise((_, reject) => setTimeout(() => reject(new Error(`${target.name}: sockets did not connect: ${JSON.stringify(g.errors.slice(0, 3))}`)), 30_000))]);
  }
}

/** One mutation through the target's server; resolves with the version its event carries, at the HTTP response. */
async function mutate(g: Group): Promise<number> {
  const t = g.target;
  const version = versions.get(t.kind)!;
  if (t.kind === 'entity-sync') {
    const change = { id: randomUUID(), deviceId: DEVICE, dataset: DATASET, entityId: t.entityId, action: 'UPDATE', baseVersion: version, data: updateData(version) };
    const data = await gql<{ submitChange: { outcome: string; version: number } }>(t.url, SUBMIT_CHANGE, { change });
    if (data.submitChange.outcome !== 'APPLIED' || data.submitChange.version !== version + 1) throw new Error(`submitChange: ${JSON.stringify(data.submitChange)}`);
  } else {
    const data = await gql<{ publish: number }>(t.url, PUBLISH_MUTATION, { dataset: DATASET, entityId: t.entityId, version: version + 1 });
    if (data.publish !== version + 1) throw new Error('publish answered another version');
  }
  versions.set(t.kind, version + 1);
  return version + 1;
}

/**
 * `count` events, one at a time: a mutation, then wait until every subscriber has its event.
 * Latency: arrival at a subscriber minus the HTTP response of the mutation (negative when the
 * event beat the response); `first`: the earliest subscriber's, one per event, which leaves out
 * this process reading the other subscribers' messages. Warm-up (`count` 0): mutate until every
 * subscription is live.
 */
async function events(name: string, count: number): Promise<{ latencies: number[]; first: number[] }> {
  const g = groups.get(name)!;
  const n = g.clients.length;
  const latencies: number[] = [];
  const first: number[] = [];
  if (count === 0) {
    for (let tries = 0; g.live.size < n; tries++) {
      if (tries > 30) throw new Error(`${name}: only ${g.live.size} of ${n} subscriptions live: ${JSON.stringify(g.errors.slice(0, 3))}`);
      await mutate(g);
      for (let t = 0; t < 20 && g.live.size < n; t++) await new Promise((r) => setTimeout(r, 50));
    }
    return { latencies, first };
  }
  for (let i = 0; i < count; i++) {
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const w = { version: versions.get(g.target.kind)! + 1, arrivals: [] as number[], done };
    g.waiting = w;
    const sent = mutate(g).then(() => performance.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${name}: event ${w.version} reached ${w.arrivals.length} of ${n} subscribers`)), 20_000)))]);
    clearTimeout(timer);
    const response = await sent;
    for (const at of w.arrivals) latencies.push(at - response);
    first.push(Math.min(...w.arrivals) - response);
    g.waiting = null;
  }
  if (g.errors.length) throw new Error(`${name}: ${JSON.stringify(g.errors.slice(0, 3))}`);
  return { latencies, first };
}

async function handle(msg: SubscriberCommand): Promise<SubscriberReply> {
  switch (msg.cmd) {
    case 'open':
      await open(msg.target, msg.count, msg.wave);
      return { ok: true };
    case 'events':
      return { ok: true, ...(await events(msg.name, msg.count)) };
    case 'close': {
      const g = groups.get(msg.name);
      await Promise.all(g?.clients.map((c) => c.dispose()) ?? []);
      groups.delete(msg.name);
      return { ok: true };
    }
    case 'exit':
      for (const name of [...groups.keys()]) await handle({ cmd: 'close', name });
      return { ok: true };
  }
}

serveCommands(handle);
