import { CHANGES_SINCE, SUBMIT_CHANGES } from './documents.js';
import { SyncError } from './errors.js';
import type { GraphQLResponse } from './http.js';
import { applyPull, applyResults, type Emit } from './reconcile.js';
import type { Transport } from './transport.js';
import type { ChangeResult, ClientState, PullPage, SubsetRule } from './types.js';

/**
 * The two halves of a sync: push the outbox in batches, pull every dataset since its cursor.
 *
 * Nothing leaves the outbox unless the server answered for that very change: a batch whose
 * request fails (no connection, a timeout, HTTP 5xx, a GraphQL error without results,
 * SERVICE_UNAVAILABLE) rejects the sync and keeps every change for the next one, where a
 * change the server did commit answers DUPLICATE. A change answered `REJECTED INTERNAL_ERROR`
 * stays too and is sent again by a later sync, after a backoff of its own, while the rest of
 * the outbox goes on.
 */
export interface ExchangeOptions {
  state: ClientState;
  transport: Transport;
  emit: Emit;
  persist: () => Promise<void>;
  deviceId: string;
  batchSize: number;
  pullLimit: number;
  /** Backoff of a change the server failed on: doubling from baseMs to maxMs, with jitter. */
  resendBaseMs: number;
  resendMaxMs: number;
}

/** The payload of `field`, or the failure of the whole request as a SyncError. */
export function unwrap(res: GraphQLResponse, field: string): Record<string, unknown> {
  const payload = res.data?.[field] as { __typename?: string; code?: string; message?: string; data?: unknown } | null | undefined;
  if (!payload) {
    if (res.errors?.length) throw new SyncError(String(res.errors[0]?.extensions?.code ?? 'GRAPHQL_ERROR'), res.errors.map((e) => e.message).join('; '), res.status);
    throw new SyncError('NO_DATA', `no ${field} in the answer`, res.status);
  }
  if (payload.__typename === 'DomainError') throw new SyncError(payload.code ?? 'DOMAIN_ERROR', payload.message ?? field, res.status);
  return payload as Record<string, unknown>;
}

export function createExchange(o: ExchangeOptions) {
  const { state, transport, emit, persist } = o;
  const retryAt = (attempt: number): number => {
    const delay = Math.min(o.resendMaxMs, o.resendBaseMs * 2 ** (attempt - 1));
    // Between half and the whole delay, so clients that failed together do not resend together.
    return Date.now() + delay / 2 + (Math.random() * delay) / 2;
  };

  const push = async (): Promise<number> => {
    let pushed = 0;
    // Each change at most once per push: one the server failed on waits for a later sync.
    const sent = new Set<string>();
    for (;;) {
      const now = Date.now();
      const batch = state.outbox.filter((e) => e.status === 'pending' && !sent.has(e.change.id) && (e.retryAt === undefined || e.retryAt <= now)).slice(0, o.batchSize);
      if (batch.length === 0) return pushed;
      for (const e of batch) sent.add(e.change.id);
      const res = await transport.execute(SUBMIT_CHANGES, { changes: batch.map((e) => e.change) });
      const results = unwrap(res, 'submitChanges').data as ChangeResult[];
      applyResults(state, results, emit, retryAt);
      await persist();
      // A change the answer does not mention would be resent forever: a server fault to surface.
      if (!results.some((r) => batch.some((e) => e.change.id === r.changeId))) throw new SyncError('NO_RESULTS', 'the server answered a batch without its results');
      pushed += batch.length;
    }
  };

  const pull = async (): Promise<number> => {
    let pulled = 0;
    for (const dataset of [...state.datasets]) {
      for (;;) {
        const res = await transport.execute(CHANGES_SINCE, { dataset, cursor: state.cursors[dataset] ?? null, limit: o.pullLimit, deviceId: o.deviceId });
        let page: PullPage;
        try {
          page = unwrap(res, 'changesSince').data as PullPage;
        } catch (error) {
          // A dataset that does not exist (a typo, all its changes rejected) stops being pulled.
          if (error instanceof SyncError && error.code === 'UNKNOWN_DATASET' && !state.outbox.some((e) => e.change.dataset === dataset)) {
            state.datasets = state.datasets.filter((d) => d !== dataset);
            break;
          }
          throw error;
        }
        // The token's subset as the server has it now (an admin may have reassigned the device).
        const viewer = res.data?.viewer as { subset?: SubsetRule[] | null } | undefined;
        if (viewer) state.subset = viewer.subset ?? null;
        applyPull(state, dataset, page, emit);
        await persist();
        pulled += page.versions.length + (page.entered?.length ?? 0);
        if (!page.hasMore) break;
      }
    }
    return pulled;
  };

  return { push, pull };
}
