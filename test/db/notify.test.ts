import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { postgresNotifier, sendingGroups } from '../../src/db/notify.js';
import { backend, freshDatabase } from '../helpers/database.js';
import { waitUntil } from '../helpers/live.js';

/**
 * The event bus between instances over LISTEN/NOTIFY (src/db/notify.ts). Under load, messages
 * published while the sender waits for Postgres must leave together, not one round trip each:
 * sent one by one they queued in memory faster than a busy pool sent them (the bench's load phase
 * held ~45,000 of them after 30 s, each arriving later than the one before).
 */
const m = (payload: string) => ({ payload });
const big = (c: string) => c.repeat(7001);

describe('sendingGroups: what leaves together', () => {
  it('small messages in one run, in order; nothing waiting, nothing to send', () => {
    expect(sendingGroups([m('a'), m('b'), m('c')])).toEqual([{ large: false, items: [m('a'), m('b'), m('c')] }]);
    expect(sendingGroups([])).toEqual([]);
  });

  it('a message over 7,000 bytes goes alone, between the runs before and after it', () => {
    expect(sendingGroups([m('a'), m(big('x')), m('b'), m(big('y')), m(big('z'))])).toEqual([
      { large: false, items: [m('a')] },
      { large: true, items: [m(big('x'))] },
      { large: false, items: [m('b')] },
      { large: true, items: [m(big('y'))] },
      { large: true, items: [m(big('z'))] },
    ]);
    // 7,000 bytes exactly still goes inline; multi-byte characters count as their bytes.
    expect(sendingGroups([m('x'.repeat(7000))])[0]!.large).toBe(false);
    expect(sendingGroups([m('é'.repeat(3501))])[0]!.large).toBe(true);
  });

  it('a message equal to one already in the run begins the next (Postgres would deliver it once)', () => {
    expect(sendingGroups([m('a'), m('b'), m('a'), m('c'), m('c')])).toEqual([
      { large: false, items: [m('a'), m('b')] },
      { large: false, items: [m('a'), m('c')] },
      { large: false, items: [m('c')] },
    ]);
  });

  it('a run stops at its byte budget', () => {
    expect(sendingGroups([m('aaaa'), m('bbbb'), m('cccc'), m('d')], 8)).toEqual([
      { large: false, items: [m('aaaa'), m('bbbb')] },
      { large: false, items: [m('cccc'), m('d')] },
    ]);
  });
});

describe.runIf(backend === 'postgres')('postgresNotifier on Postgres', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let publisher: postgres.Sql;
  let listener: postgres.Sql;
  let statements = 0;
  beforeAll(async () => {
    database = await freshDatabase();
    publisher = postgres(database.url!, { max: 4, onnotice: () => {}, debug: () => void statements++ });
    listener = postgres(database.url!, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await publisher?.end();
    await listener?.end();
    await database?.close();
  });

  it('600 messages published at once, large and repeated ones among them: each arrives once, in order, in a few statements', async () => {
    const channel = 'notify_test';
    const received: string[] = [];
    const unlisten = await postgresNotifier(listener, channel).subscribe((p) => received.push(p));
    const notifier = postgresNotifier(publisher, channel);
    const sent = Array.from({ length: 600 }, (_, i) => (i % 200 === 7 ? big(String(i % 10)) : i % 50 === 1 ? 'again' : `message ${i}`));
    statements = 0;
    await Promise.all(sent.map((p) => notifier.publish(p)));
    await waitUntil(() => received.length >= sent.length || null, 'every message', 10_000);
    expect(received).toEqual(sent);
    // Three large messages take three statements each; the rest leave in runs. One by one: 606.
    expect(statements).toBeLessThanOrEqual(9 + 20);
    await unlisten();
  });

  it('a failed send rejects the publishes it carried; later ones still go', async () => {
    const channel = 'notify_test_failure';
    const received: string[] = [];
    const unlisten = await postgresNotifier(listener, channel).subscribe((p) => received.push(p));
    const notifier = postgresNotifier(publisher, channel);
    // The first leaves at once; the next two wait for it and leave together. Postgres refuses a
    // NUL in text: the statement carrying it fails, and the message that rode along with it.
    const together = [notifier.publish('first'), notifier.publish('rode along'), notifier.publish('bad \u0000')].map((p) => p.then(() => 'sent', (e: Error) => e.message));
    expect(await Promise.all(together)).toEqual(['sent', expect.stringMatching(/0x00/), expect.stringMatching(/0x00/)]);
    await notifier.publish('after');
    await waitUntil(() => received.length >= 2 || null, 'the later message', 10_000);
    expect(received).toEqual(['first', 'after']);
    await unlisten();
  });
});
