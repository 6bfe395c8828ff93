import { describe, expect, it } from 'vitest';
import { WEBHOOK_LIMITS } from '../../src/core/webhooks.js';
import { useApp } from '../helpers/app.js';
import { domain, noInternalError, ok } from '../helpers/domain.js';

/**
 * Bad webhook definitions over real HTTP: each refused with its code and a sentence, nothing
 * stored (issue 21, "Bad input"). Who may register one is in authorization.test.ts.
 */

// Deliveries are not the point here: nothing listens at these URLs.
const t = useApp({ flushIntervalSeconds: 0, webhooks: { deliver: false } });
const d = domain(t);

const CREATE = `mutation($url: String!, $ds: [String!], $ev: [WebhookEvent!]!) { createWebhook(url: $url, datasets: $ds, events: $ev) {
  __typename ... on MutationCreateWebhookSuccess { data { webhook { id url datasets events } } } ... on Error { code message } } }`;
const urls = async () => (ok(await t.gql('{ webhooks { url } }')).webhooks as { url: string }[]).map((w) => w.url);

async function refused(vars: { url: string; ds?: string[] | null; ev?: string[] }, code: string, message: string | RegExp) {
  const before = await urls();
  const r = ok(await t.gql(CREATE, { url: vars.url, ds: vars.ds ?? null, ev: vars.ev ?? ['ENTITY_CHANGED'] })).createWebhook;
  expect(r).toMatchObject({ __typename: 'DomainError', code });
  if (typeof message === 'string') expect(r.message).toBe(message);
  else expect(r.message).toMatch(message);
  expect(await urls()).toEqual(before);
}

describe('createWebhook refuses', () => {
  it.each([
    ['ftp://example.org/hook', 'only http and https URLs are sent to, not ftp:'],
    ['javascript:alert(1)', 'only http and https URLs are sent to, not javascript:'],
    ['file:///etc/passwd', 'only http and https URLs are sent to, not file:'],
    ['/relative/hook', '"/relative/hook" is not an absolute URL'],
    ['not a url', '"not a url" is not an absolute URL'],
    ['', '"" is not an absolute URL'],
  ])('a URL that is not http(s): %s', async (url, why) => {
    await refused({ url }, 'INVALID_WEBHOOK_URL', `a webhook URL must be an absolute http(s) URL without credentials or fragment: ${why}`);
  });

  it.each(['http://user:secret@example.org/hook', 'https://user@example.org/hook', 'https://:pw@example.org/hook'])('a URL with credentials: %s', async (url) => {
    await refused({ url }, 'INVALID_WEBHOOK_URL', /a URL with credentials in it \(user:password@\) is refused/);
  });

  it('a URL with a fragment, and one too long (2,049 characters; 2,048 is accepted)', async () => {
    await refused({ url: 'https://example.org/hook#part' }, 'INVALID_WEBHOOK_URL', /a URL with a fragment/);
    const long = (n: number) => `https://example.org/${'a'.repeat(n - 'https://example.org/'.length)}`;
    await refused({ url: long(WEBHOOK_LIMITS.maxUrlLength + 1) }, 'INVALID_WEBHOOK_URL', /a URL of 2049 characters; at most 2048/);
    expect(ok(await t.gql(CREATE, { url: long(WEBHOOK_LIMITS.maxUrlLength), ds: null, ev: ['ENTITY_CHANGED'] })).createWebhook.__typename).toBe('MutationCreateWebhookSuccess');
  });

  it('an unknown event type: a GraphQL validation error before anything runs', async () => {
    const before = await urls();
    const res = await t.gql(CREATE, { url: 'https://example.org/a', ds: null, ev: ['ENTITY_CHANGED', 'tokenRevoked'] });
    noInternalError(res);
    expect(res.data).toBeUndefined();
    expect(res.errors?.[0]?.message).toMatch(/Value "tokenRevoked" does not exist in "WebhookEvent" enum/);
    expect(await urls()).toEqual(before);
  });

  it('no event type, an empty or oversized dataset list, an unknown or malformed dataset', async () => {
    const ds = await d.createDataset(['height']);
    await refused({ url: 'https://example.org/a', ev: [] }, 'INVALID_WEBHOOK', 'the webhook is not acceptable: it asks for no event type');
    await refused({ url: 'https://example.org/a', ds: [] }, 'INVALID_WEBHOOK', 'the webhook is not acceptable: an empty dataset list; leave it out for every dataset');
    const many = Array.from({ length: WEBHOOK_LIMITS.maxDatasets + 1 }, (_, i) => `ds_${i}`);
    await refused({ url: 'https://example.org/a', ds: many }, 'INVALID_WEBHOOK', 'the webhook is not acceptable: 101 datasets; at most 100 (leave the list out for every dataset)');
    await refused({ url: 'https://example.org/a', ds: [ds, 'nowhere'] }, 'UNKNOWN_DATASET', 'no dataset named "nowhere"');
    await refused({ url: 'https://example.org/a', ds: ['bad\u0000name'] }, 'INVALID_NAME', /^dataset "bad.name": the name is not acceptable: /);
    // Repeats are not errors: kept once.
    const r = ok(await t.gql(CREATE, { url: 'https://example.org/b', ds: [ds, ds], ev: ['ENTITY_CHANGED', 'ENTITY_CHANGED', 'CHANGE_REJECTED'] })).createWebhook;
    expect(r.data.webhook).toMatchObject({ datasets: [ds], events: ['ENTITY_CHANGED', 'CHANGE_REJECTED'] });
  });

  it(`more than ${WEBHOOK_LIMITS.maxWebhooks} webhooks: WEBHOOK_LIMIT until one is deleted`, async () => {
    const existing = (await urls()).length;
    for (let i = existing; i < WEBHOOK_LIMITS.maxWebhooks; i++) {
      expect(ok(await t.gql(CREATE, { url: `https://example.org/n${i}`, ds: null, ev: ['ENTITY_CHANGED'] })).createWebhook.__typename).toBe('MutationCreateWebhookSuccess');
    }
    await refused({ url: 'https://example.org/one-too-many' }, 'WEBHOOK_LIMIT', `${WEBHOOK_LIMITS.maxWebhooks} webhooks exist, the most the service accepts: delete one first`);
    const DELETE = 'mutation($id: ID!) { deleteWebhook(id: $id) { __typename } }';
    const [first] = ok(await t.gql('{ webhooks { id } }')).webhooks;
    expect(ok(await t.gql(DELETE, { id: first.id })).deleteWebhook.__typename).toBe('MutationDeleteWebhookSuccess');
    expect(ok(await t.gql(CREATE, { url: 'https://example.org/one-more', ds: null, ev: ['ENTITY_CHANGED'] })).createWebhook.__typename).toBe('MutationCreateWebhookSuccess');
    // Back to as many as before, so the other tests (in any order) can still make theirs.
    const all = ok(await t.gql('{ webhooks { id url } }')).webhooks as { id: string; url: string }[];
    for (const w of all.filter((x) => /\/(n\d+|one-more)$/.test(x.url))) ok(await t.gql(DELETE, { id: w.id }));
    expect((await urls()).length).toBeLessThanOrEqual(existing);
  });
});

describe('deleteWebhook and webhookDeliveries refuse', () => {
  it('an unknown or malformed id: WEBHOOK_NOT_FOUND, and once deleted it is gone', async () => {
    const DELETE = 'mutation($id: ID!) { deleteWebhook(id: $id) { __typename ... on Error { code message } } }';
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      expect(ok(await t.gql(DELETE, { id })).deleteWebhook).toEqual({ __typename: 'DomainError', code: 'WEBHOOK_NOT_FOUND', message: `no webhook has the id "${id}"` });
    }
  });

  it('a cursor it did not hand out, a page over 100, paging backwards', async () => {
    const id = ok(await t.gql('{ webhooks { id } }')).webhooks[0]?.id ?? '00000000-0000-4000-8000-000000000000';
    const q = (args: string) => t.gql(`query($id: ID!) { webhookDeliveries(webhookId: $id, ${args}) { nodes { id } } }`, { id });
    for (const [args, code] of [
      ['after: "DC:S:abc"', 'INVALID_CURSOR'],
      ['first: 101', 'BAD_USER_INPUT'],
      ['last: 5', 'BAD_USER_INPUT'],
    ] as const) {
      const res = await q(args);
      noInternalError(res);
      expect(res.errors?.[0]?.extensions?.code, args).toBe(code);
    }
    expect(ok(await q('first: 100')).webhookDeliveries.nodes).toEqual([]);
  });
});
