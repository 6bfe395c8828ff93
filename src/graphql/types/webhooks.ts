import { GraphQLError } from 'graphql';
import { WEBHOOK_DELIVERY_STATUSES, WEBHOOK_EVENT_TYPES, WEBHOOK_LIMITS, type WebhookDeliveryStatus, type WebhookEventType } from '../../core/webhooks.js';
import type { Db } from '../../db/client.js';
import { createWebhook, deleteWebhook, deliveriesOf, deliveryCounts, listWebhooks, type DeliveryRow, type WebhookRow } from '../../sync/webhooks.js';
import { connectionPrice } from '../pricing.js';
import { builder } from '../builder.js';

/** Webhooks and their deliveries (DESIGN "webhook"): administrators only. */

const EVENT_DESCRIPTIONS: Record<WebhookEventType, string> = {
  conflictDetected: 'A change was applied in conflict (as the conflictDetected subscription).',
  conflictResolved: "A reviewer resolved an entity's conflict.",
  changeHeld: 'A change went into the backlog to wait for its predecessor.',
  backlogFlushed: 'Held changes were applied (released or forced).',
  entityChanged: 'An entity got a new version.',
  changeRejected: 'The service refused a change of the dataset (its code and message are in the event).',
};

/** Upper-case values in the schema, the subscription names (`conflictDetected`) as each request's `type`. */
const upper = (type: string) => type.replace(/([A-Z])/g, '_$1').toUpperCase();

export const WebhookEventEnum = builder.enumType('WebhookEvent', {
  description: 'An event type a webhook may be sent; its body says `type` as the subscription of that name does (`CONFLICT_DETECTED`: "conflictDetected").',
  values: Object.fromEntries(WEBHOOK_EVENT_TYPES.map((type) => [upper(type), { value: type, description: EVENT_DESCRIPTIONS[type] }])) as Record<string, { value: WebhookEventType; description: string }>,
});

const DeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  description: 'Where a delivery stands.',
  values: {
    PENDING: { description: 'Not delivered yet: waiting for its first attempt, in flight, or waiting to be retried.' },
    DELIVERED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Every attempt within the retry time failed; it is not tried again.' },
  } satisfies Record<(typeof WEBHOOK_DELIVERY_STATUSES)[number], unknown>,
});

const DeliveryCountsRef = builder.objectRef<Record<(typeof WEBHOOK_DELIVERY_STATUSES)[number], number>>('WebhookDeliveryCounts').implement({
  description: "A webhook's deliveries by status (settled ones are kept for 7 days).",
  fields: (t) => ({
    pending: t.int({ description: 'Not delivered yet.', resolve: (c) => c.PENDING }),
    delivered: t.int({ description: 'Answered 2xx.', resolve: (c) => c.DELIVERED }),
    failed: t.int({ description: 'Given up after the retry time.', resolve: (c) => c.FAILED }),
  }),
});

const WebhookRef = builder.objectRef<WebhookRow>('Webhook').implement({
  description: 'An endpoint outside the service that is sent the chosen events of chosen datasets, signed (Standard Webhooks), at least once. Its secret is shown once, when it is made.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The webhook\'s id (deleteWebhook, webhookDeliveries).' }),
    url: t.exposeString('url', { description: 'Where each event is POSTed.' }),
    datasets: t.exposeStringList('datasets', { nullable: true, description: 'The datasets whose events it is sent; null: every dataset.' }),
    events: t.field({ type: [WebhookEventEnum], description: 'The event types it is sent.', resolve: (w) => w.events }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'It is sent the events committed from then on.' }),
    deliveryCounts: t.loadable({
      type: DeliveryCountsRef,
      description: 'Its deliveries by status.',
      load: (ids: string[], ctx) => deliveryCounts(ctx.db, ids),
      resolve: (w) => w.id,
    }),
  }),
});

const NewWebhook = builder.objectRef<{ secret: string; webhook: WebhookRow }>('NewWebhook').implement({
  description: 'A webhook just made, with its secret.',
  fields: (t) => ({
    secret: t.exposeString('secret', {
      description: 'The signing secret (`whsec_…`, as Standard Webhooks libraries take it): verify `webhook-signature` with it. Shown only this once.',
    }),
    webhook: t.field({ type: WebhookRef, description: 'The webhook.', resolve: (r) => r.webhook }),
  }),
});

const DeliveryRef = builder.objectRef<DeliveryRow>('WebhookDelivery').implement({
  description: 'One event sent (or being sent) to one webhook, with its attempts.',
  fields: (t) => ({
    id: t.id({ description: 'The delivery.', resolve: (d) => String(d.id) }),
    eventId: t.exposeID('eventId', { description: 'The event\'s stable id, sent as `webhook-id` (the same on every attempt): receivers deduplicate by it.' }),
    eventType: t.field({ type: WebhookEventEnum, description: 'Its event type.', resolve: (d) => d.eventType as WebhookEventType }),
    dataset: t.exposeString('dataset', { description: 'The dataset of the event.' }),
    entityId: t.id({ nullable: true, description: 'The entity the event is about (null for a refused change that named none).', resolve: (d) => (d.entityKey.startsWith('change:') ? null : d.entityKey) }),
    payload: t.field({ type: 'JSONObject', description: 'The `data` of the body sent.', resolve: (d) => { const { type: _type, datasetName, ...rest } = d.payload; return { dataset: datasetName, ...rest }; } }),
    status: t.field({ type: DeliveryStatusEnum, description: 'Where the delivery stands: pending (to be tried, or tried again), delivered, or failed for good.', resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts', { description: 'Attempts made (one in flight included).' }),
    lastStatusCode: t.exposeInt('lastStatus', { nullable: true, description: 'The HTTP status of the last answer; null when there was none (refused, timed out, not tried yet).' }),
    lastError: t.exposeString('lastError', { nullable: true, description: 'Why the last attempt failed; null after a success or before any attempt.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When its event committed.' }),
    lastAttemptAt: t.expose('lastAttemptAt', { type: 'DateTime', nullable: true, description: 'When it was last tried.' }),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, description: 'When it is tried next; null once delivered or failed.', resolve: (d) => (d.status === 'PENDING' ? d.nextAttemptAt : null) }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true, description: 'When the endpoint answered 2xx.' }),
  }),
});

const DELIVERIES_PAGE = 20;
const MAX_DELIVERIES_PAGE = 100;

/** Delivery cursors are delivery ids; anything else is refused clearly rather than reaching SQL. */
function cursorId(cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  if (!/^\d{1,15}$/.test(cursor)) throw new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });
  return Number(cursor);
}

/** One page, newest first: a row beyond the page says whether there is a next one. */
async function deliveriesPage(db: Db, webhookId: string, first: number | null | undefined, after: string | null | undefined, status: WebhookDeliveryStatus | null) {
  if (first != null && (first < 0 || first > MAX_DELIVERIES_PAGE)) {
    throw new GraphQLError(`first takes 0 to ${MAX_DELIVERIES_PAGE}, not ${first}`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  const limit = first ?? DELIVERIES_PAGE;
  const rows = await deliveriesOf(db, webhookId, { before: cursorId(after ?? undefined), limit: limit + 1, status });
  const page = rows.slice(0, limit);
  const edges = page.map((node) => ({ cursor: String(node.id), node }));
  return {
    edges,
    pageInfo: { hasNextPage: rows.length > limit, hasPreviousPage: after != null, startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null },
  };
}

builder.queryFields((t) => ({
  webhooks: t.field({
    type: [WebhookRef],
    description: `Every webhook, oldest first (at most ${WEBHOOK_LIMITS.maxWebhooks} exist).`,
    authScopes: { admin: true },
    complexity: { field: 1, multiplier: WEBHOOK_LIMITS.maxWebhooks },
    resolve: (_root, _args, ctx) => listWebhooks(ctx.db),
  }),
  webhookDeliveries: t.connection({
    type: DeliveryRef,
    description: `A webhook's deliveries, newest first, paged with first/after (default ${DELIVERIES_PAGE}, at most ${MAX_DELIVERIES_PAGE}); nothing for an unknown id.`,
    authScopes: { admin: true },
    args: {
      webhookId: t.arg.id({ required: true, description: 'The webhook.' }),
      status: t.arg({ type: DeliveryStatusEnum, required: false, description: 'Only deliveries in this state.' }),
    },
    complexity: connectionPrice(DELIVERIES_PAGE, MAX_DELIVERIES_PAGE),
    resolve: (_root, args, ctx) => {
      if (args.last != null || args.before != null) throw new GraphQLError('webhookDeliveries pages forward only: use first and after', { extensions: { code: 'BAD_USER_INPUT' } });
      return deliveriesPage(ctx.db, String(args.webhookId), args.first, args.after, args.status ?? null);
    },
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: NewWebhook,
    description: `Registers an endpoint for the chosen events of the chosen datasets (or every dataset). Its signing secret is in the answer, once. At most ${WEBHOOK_LIMITS.maxWebhooks} webhooks.`,
    authScopes: { admin: true },
    errors: { dataField: { description: 'The new webhook, with its signing secret (shown only this once).' } },
    args: {
      url: t.arg.string({ required: true, description: `An absolute http(s) URL without credentials (user:password@) or fragment, at most ${WEBHOOK_LIMITS.maxUrlLength} characters. Redirects are not followed.` }),
      datasets: t.arg.stringList({ description: `Datasets whose events it is sent (at most ${WEBHOOK_LIMITS.maxDatasets}, each must exist); absent: every dataset.` }),
      events: t.arg({ type: [WebhookEventEnum], required: true, description: 'The event types it is sent (at least one).' }),
    },
    resolve: (_root, args, ctx) => createWebhook(ctx.db, { url: args.url, datasets: args.datasets ?? null, events: args.events }),
  }),
  deleteWebhook: t.field({
    type: WebhookRef,
    description: 'Removes a webhook and its deliveries: what it had not been sent is not sent.',
    authScopes: { admin: true },
    errors: { dataField: { description: 'The webhook as it was before it was removed.' } },
    args: { id: t.arg.id({ required: true, description: 'The webhook.' }) },
    resolve: (_root, args, ctx) => deleteWebhook(ctx.db, String(args.id)),
  }),
}));
