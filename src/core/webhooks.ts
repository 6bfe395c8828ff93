import type { SyncEvent } from './events.js';
import type { ChangeError } from './types.js';
import { changeError } from './errors.js';
import { validateName } from './validate.js';

/**
 * Webhooks (DESIGN "webhook", step 7): which events an endpoint may ask for, what makes an
 * acceptable endpoint, the body it is sent, and when a failed delivery is tried again. Pure: the
 * outbox, the deliveries and the HTTP request live in src/sync and src/server.
 */

export const WEBHOOK_EVENT_TYPES = ['conflictDetected', 'conflictResolved', 'changeHeld', 'backlogFlushed', 'entityChanged', 'changeRejected'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const WEBHOOK_DELIVERY_STATUSES = ['PENDING', 'DELIVERED', 'FAILED'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/** The events a webhook can be sent: those of one dataset's entities and changes. */
export type WebhookEvent = Extract<SyncEvent, { type: WebhookEventType }>;

export const WEBHOOK_LIMITS = {
  /** Webhooks in all: each one multiplies the deliveries every event makes. */
  maxWebhooks: 100,
  maxUrlLength: 2048,
  /** Datasets one webhook names (more: register it for every dataset). */
  maxDatasets: 100,
} as const;

export function isWebhookEvent(event: SyncEvent): event is WebhookEvent {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(event.type);
}

/**
 * An endpoint is an absolute http(s) URL without credentials in it (they would be sent with every
 * request and shown to every admin; the signature is the credential) and without a fragment.
 * Private and loopback hosts are a delivery-time rule (WEBHOOK_DENY_PRIVATE), checked on the
 * address each delivery connects to, since a name can resolve anywhere.
 */
export function checkWebhookUrl(raw: string): ChangeError | null {
  if (raw.length > WEBHOOK_LIMITS.maxUrlLength) return changeError('INVALID_WEBHOOK_URL', `a URL of ${raw.length} characters; at most ${WEBHOOK_LIMITS.maxUrlLength}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return changeError('INVALID_WEBHOOK_URL', `"${raw.slice(0, 60)}" is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return changeError('INVALID_WEBHOOK_URL', `only http and https URLs are sent to, not ${url.protocol.slice(0, 20)}`);
  if (url.username !== '' || url.password !== '') return changeError('INVALID_WEBHOOK_URL', 'a URL with credentials in it (user:password@) is refused: requests are signed instead');
  if (url.hostname === '') return changeError('INVALID_WEBHOOK_URL', 'the URL names no host');
  if (url.hash !== '' || raw.includes('#')) return changeError('INVALID_WEBHOOK_URL', 'a URL with a fragment (#…) is refused: it is never sent');
  return null;
}

export interface WebhookInput {
  url: string;
  datasets: readonly string[] | null;
  events: readonly string[];
}

/** What createWebhook stores: the URL as given, the lists without repeats. */
export interface WebhookSpec {
  url: string;
  datasets: string[] | null;
  events: WebhookEventType[];
}

/** Checks a webhook's definition (not whether its datasets exist: that needs the database). */
export function checkWebhook(input: WebhookInput): { ok: true; spec: WebhookSpec } | { ok: false; error: ChangeError } {
  const urlError = checkWebhookUrl(input.url);
  if (urlError) return { ok: false, error: urlError };
  const events = [...new Set(input.events)];
  if (events.length === 0) return { ok: false, error: changeError('INVALID_WEBHOOK', 'it asks for no event type') };
  const unknown = events.filter((e) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e));
  if (unknown.length > 0) return { ok: false, error: changeError('INVALID_WEBHOOK', `unknown event type ${unknown.map((e) => `"${e.slice(0, 40)}"`).join(', ')}`) };
  let datasets: string[] | null = null;
  if (input.datasets !== null) {
    datasets = [...new Set(input.datasets)];
    if (datasets.length === 0) return { ok: false, error: changeError('INVALID_WEBHOOK', 'an empty dataset list; leave it out for every dataset') };
    if (datasets.length > WEBHOOK_LIMITS.maxDatasets) return { ok: false, error: changeError('INVALID_WEBHOOK', `${datasets.length} datasets; at most ${WEBHOOK_LIMITS.maxDatasets} (leave the list out for every dataset)`) };
    for (const name of datasets) {
      const error = validateName(name);
      if (error) return { ok: false, error: { code: error.code, message: `dataset "${name.slice(0, 60)}": ${error.message}` } };
    }
  }
  return { ok: true, spec: { url: input.url, datasets, events: events as WebhookEventType[] } };
}

/** The delivery order key of an event: its entity, or the refused change when it named none. */
export function webhookEntityKey(event: WebhookEvent): string {
  if (event.type === 'changeRejected') return event.entityId ?? `change:${event.changeId}`;
  return event.entityId;
}

/**
 * The body a receiver gets, as the Standard Webhooks spec shapes it: `type`, `timestamp` (when
 * the change committed) and `data` (the event's ids and facts, named as in the GraphQL
 * subscriptions). The event id travels in the `webhook-id` header.
 */
export function webhookBody(event: WebhookEvent, createdAt: Date): string {
  const { type, datasetName, ...rest } = event;
  return JSON.stringify({ type, timestamp: createdAt.toISOString(), data: { dataset: datasetName, ...rest } });
}

export interface RetryPolicy {
  /** How long after its event a delivery is still tried; then it is FAILED. */
  retryForMs: number;
  /** The first wait; each further one doubles, up to maxBackoffMs. */
  backoffBaseMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retryForMs: 24 * 3600_000, backoffBaseMs: 2000, maxBackoffMs: 3600_000 };

/**
 * After the `attempts`-th failed attempt: wait exponentially longer, with jitter (half the wait is
 * random, `random` in [0, 1)), so receivers that come back are not hit by every sender at once.
 * Null when the next attempt would fall past the retry time: the delivery has failed.
 */
export function nextAttemptDelay(attempts: number, ageMs: number, policy: RetryPolicy, random: number): number | null {
  const exponential = Math.min(policy.maxBackoffMs, policy.backoffBaseMs * 2 ** Math.max(0, Math.min(attempts - 1, 40)));
  const delay = Math.round(exponential / 2 + (exponential / 2) * random);
  return ageMs + delay > policy.retryForMs ? null : delay;
}
