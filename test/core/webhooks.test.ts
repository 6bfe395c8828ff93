import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { checkWebhook, checkWebhookUrl, isWebhookEvent, nextAttemptDelay, webhookBody, webhookEntityKey, WEBHOOK_EVENT_TYPES, type WebhookEvent } from '../../src/core/webhooks.js';
import { newStore, submit, uuid } from './batch-memory.js';

const E = uuid(0xe, 1);

describe('checkWebhookUrl', () => {
  it.each(['http://127.0.0.1:8080/hook', 'https://hooks.example.org/a?b=c', 'http://[::1]/x', 'HTTPS://EXAMPLE.ORG'])('accepts %s', (url) => {
    expect(checkWebhookUrl(url)).toBeNull();
  });
  it.each([
    ['ftp://x.org/', 'only http and https URLs are sent to, not ftp:'],
    ['ws://x.org/', 'only http and https URLs are sent to, not ws:'],
    ['mailto:a@b.org', 'only http and https URLs are sent to, not mailto:'],
    ['x.org/hook', '"x.org/hook" is not an absolute URL'],
    ['http://u:p@x.org/', 'a URL with credentials in it (user:password@) is refused: requests are signed instead'],
    ['http://u@x.org/', 'a URL with credentials in it (user:password@) is refused: requests are signed instead'],
    ['http://x.org/#', 'a URL with a fragment (#…) is refused: it is never sent'],
    ['http://x.org/#a', 'a URL with a fragment (#…) is refused: it is never sent'],
  ])('refuses %s', (url, why) => {
    expect(checkWebhookUrl(url)).toEqual({ code: 'INVALID_WEBHOOK_URL', message: `a webhook URL must be an absolute http(s) URL without credentials or fragment: ${why}` });
  });
  it('2,048 characters at most', () => {
    const url = (n: number) => `http://x.org/${'a'.repeat(n - 13)}`;
    expect(checkWebhookUrl(url(2048))).toBeNull();
    expect(checkWebhookUrl(url(2049))?.message).toMatch(/a URL of 2049 characters; at most 2048$/);
  });
});

describe('checkWebhook', () => {
  it('keeps the URL, drops repeats, null datasets means every dataset', () => {
    expect(checkWebhook({ url: 'http://x.org', datasets: null, events: ['entityChanged', 'entityChanged'] })).toEqual({ ok: true, spec: { url: 'http://x.org', datasets: null, events: ['entityChanged'] } });
    expect(checkWebhook({ url: 'http://x.org', datasets: ['a', 'a', 'b'], events: [...WEBHOOK_EVENT_TYPES] })).toEqual({ ok: true, spec: { url: 'http://x.org', datasets: ['a', 'b'], events: [...WEBHOOK_EVENT_TYPES] } });
  });
  it('refuses no events, unknown events, an empty or long dataset list, a bad name, a bad URL first', () => {
    const code = (input: Parameters<typeof checkWebhook>[0]) => {
      const r = checkWebhook(input);
      return r.ok ? null : r.error.code;
    };
    expect(code({ url: 'http://x.org', datasets: null, events: [] })).toBe('INVALID_WEBHOOK');
    expect(code({ url: 'http://x.org', datasets: null, events: ['tokenRevoked'] })).toBe('INVALID_WEBHOOK');
    expect(code({ url: 'http://x.org', datasets: [], events: ['entityChanged'] })).toBe('INVALID_WEBHOOK');
    expect(code({ url: 'http://x.org', datasets: Array.from({ length: 101 }, (_, i) => `d${i}`), events: ['entityChanged'] })).toBe('INVALID_WEBHOOK');
    expect(code({ url: 'http://x.org', datasets: Array.from({ length: 100 }, (_, i) => `d${i}`), events: ['entityChanged'] })).toBeNull();
    expect(code({ url: 'http://x.org', datasets: ['9lives'], events: ['entityChanged'] })).toBe('INVALID_NAME');
    expect(code({ url: 'ftp://x.org', datasets: [], events: [] })).toBe('INVALID_WEBHOOK_URL');
  });
});

describe('events and bodies', () => {
  const changed: SyncEvent = { type: 'entityChanged', datasetName: 'trees', entityId: E, version: 2 };
  const refused: SyncEvent = { type: 'changeRejected', datasetName: 'trees', entityId: null, changeId: 'c1', deviceId: 'tab', code: 'MISSING_ENTITY_ID', message: 'the change needs entityId' };
  it('every dataset event is a webhook event; a token revocation is not', () => {
    expect(isWebhookEvent(changed)).toBe(true);
    expect(isWebhookEvent(refused)).toBe(true);
    expect(isWebhookEvent({ type: 'tokenRevoked', tokenId: 't' })).toBe(false);
  });
  it('the order key is the entity, or the refused change when it named none', () => {
    expect(webhookEntityKey(changed as WebhookEvent)).toBe(E);
    expect(webhookEntityKey(refused as WebhookEvent)).toBe('change:c1');
    expect(webhookEntityKey({ ...refused, entityId: E } as WebhookEvent)).toBe(E);
  });
  it('the body: type, commit time, and the event named as in the subscriptions', () => {
    expect(JSON.parse(webhookBody(changed as WebhookEvent, new Date('2026-12-01T10:00:00.123Z')))).toEqual({
      type: 'entityChanged',
      timestamp: '2026-12-01T10:00:00.123Z',
      data: { dataset: 'trees', entityId: E, version: 2 },
    });
  });
});

describe('nextAttemptDelay', () => {
  const policy = { retryForMs: 60_000, backoffBaseMs: 1000, maxBackoffMs: 16_000 };
  it('doubles from the base, half of it jitter, capped; null once the next attempt would fall past the retry time', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => nextAttemptDelay(n, 0, policy, 0))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect([1, 2, 3, 4, 5, 6].map((n) => nextAttemptDelay(n, 0, policy, 0.999999))).toEqual([1000, 2000, 4000, 8000, 16000, 16000]);
    expect(nextAttemptDelay(1, 59_500, policy, 0)).toBe(500);
    expect(nextAttemptDelay(1, 59_501, policy, 0)).toBeNull();
    expect(nextAttemptDelay(3, 60_000, policy, 0)).toBeNull();
  });
  it('property: within [wait/2, wait] of the capped exponential, and null exactly when age + delay passes the bound', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 120_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempts, age, random) => {
        const wait = Math.min(policy.maxBackoffMs, policy.backoffBaseMs * 2 ** Math.min(attempts - 1, 40));
        const delay = nextAttemptDelay(attempts, age, policy, random);
        const unbounded = nextAttemptDelay(attempts, 0, { ...policy, retryForMs: Infinity }, random)!;
        expect(unbounded).toBeGreaterThanOrEqual(wait / 2);
        expect(unbounded).toBeLessThanOrEqual(wait);
        expect(delay).toBe(age + unbounded > policy.retryForMs ? null : unbounded);
      }),
    );
  });
});

describe('the plan announces refusals', () => {
  it('of a dataset that exists, once, with the code and message; not of a dataset that does not', () => {
    const s = newStore();
    const p = submit(s, [
      { id: uuid(0xc, 1), dataset: 'trees', entityId: E, action: 'UPDATE', baseVersion: 1, data: { height: 1 }, deviceId: 'tab' },
      { id: uuid(0xc, 2), dataset: 'nope', entityId: E, action: 'CREATE', label: 'x', data: {} },
      { id: uuid(0xc, 3), dataset: 'trees', action: 'CREATE', label: 'x', data: {} },
    ]);
    expect(p.events).toEqual([
      { type: 'changeRejected', datasetName: 'trees', entityId: E, changeId: uuid(0xc, 1), deviceId: 'tab', code: 'ENTITY_NOT_FOUND', message: `the entity does not exist: ${E}` },
      { type: 'changeRejected', datasetName: 'trees', entityId: null, changeId: uuid(0xc, 3), deviceId: null, code: 'MISSING_ENTITY_ID', message: 'the change needs entityId' },
    ]);
  });
});
