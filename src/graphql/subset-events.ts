import { Repeater } from 'graphql-yoga';
import { mayHaveSubset } from '../core/auth.js';
import type { EntityEvent } from '../core/events.js';
import { movement, type Subset, type SubsetState } from '../core/subsets.js';
import { stateNow, statesAt } from '../sync/subset-states.js';
import { tokenSubset } from '../sync/tokens.js';
import type { Context } from './context.js';
import { SubscriptionEnd } from './pubsub.js';

/** An entityChanged event as a subscriber with a subset gets it when the change took the entity out of its share. */
export type Delivered<E> = E & { leftSubset?: boolean };

/** Before and after an event, as far as a subset can tell (null: no entity then). */
interface Judged {
  before: SubsetState | null;
  after: SubsetState | null;
}

/**
 * One lookup per event and instance: every subscriber with a subset is handed the same event
 * object by the bus, so the states it is judged by are read once. Weakly held: gone with the event.
 */
const looked = new WeakMap<object, Promise<Judged>>();

function judge(ctx: Context, e: EntityEvent): Promise<Judged> {
  let found = looked.get(e);
  if (!found) {
    found = statesOf(ctx, e);
    looked.set(e, found);
  }
  return found;
}

/** The entity's state before and after what the event announces. */
async function statesOf(ctx: Context, e: EntityEvent): Promise<Judged> {
  switch (e.type) {
    case 'entityChanged':
    case 'conflictDetected': {
      const s = await statesAt(ctx.db, e.entityId, [e.version - 1, e.version]);
      return { before: s.get(e.version - 1) ?? null, after: s.get(e.version) ?? null };
    }
    case 'backlogFlushed': {
      const versions = e.changes.map((c) => c.version);
      const [first, last] = [Math.min(...versions), Math.max(...versions)];
      const s = await statesAt(ctx.db, e.entityId, [first - 1, last]);
      return { before: s.get(first - 1) ?? null, after: s.get(last) ?? null };
    }
    case 'conflictResolved': {
      const s = await statesAt(ctx.db, e.entityId, [e.version]);
      const at = s.get(e.version) ?? null;
      return { before: at, after: at };
    }
    case 'changeHeld': {
      const now = await stateNow(ctx.db, e.entityId);
      return { before: now, after: now };
    }
  }
}

/**
 * The events a subscriber may see (DESIGN "Subsets"): for a token that has (or may be given) a
 * subset, those of entities in its share after the event, and an entityChanged with `leftSubset`
 * when a change took one out; never others. The rules are the token's as stored: read when the
 * subscription starts and again whenever an admin changes them (tokenSubsetChanged, on any
 * instance), so a reassignment applies to open subscriptions at once. The subscription's own
 * principal follows, so the event's `entity` and `entityVersion` are judged by the same rules.
 */
export function inShare<E extends EntityEvent>(ctx: Context, source: Repeater<E | SubscriptionEnd>, ended: AbortSignal): AsyncIterable<Delivered<E> | SubscriptionEnd> {
  const tokenId = ctx.principal.tokenId;
  if (tokenId === null || !mayHaveSubset(ctx.principal)) return source;
  let rules: Subset | null = ctx.principal.subset;
  // Reading the rules again, after a reassignment: events wait for it, so every event published
  // after the reassignment (its event comes first, on the bus as through NOTIFY) is judged by the
  // new rules.
  let reading: Promise<void> | null = null;
  const reread = () => {
    reading = tokenSubset(ctx.db, tokenId).then(
      (subset) => {
        rules = subset;
        ctx.principal = { ...ctx.principal, subset };
      },
      () => {},
    );
  };
  return new Repeater<Delivered<E> | SubscriptionEnd>(async (push, stop) => {
    void stop.then(() => void source.return());
    const changes = ctx.pubsub.subscribe('tokenSubsetChanged', { signal: ended, filter: (e) => e.tokenId === tokenId });
    void stop.then(() => void changes.return());
    void (async () => {
      for await (const c of changes) if (!(c instanceof SubscriptionEnd)) reread();
    })();
    reread();
    for await (const e of source) {
      while (reading) {
        const r = reading;
        await r;
        if (reading === r) reading = null;
      }
      if (e instanceof SubscriptionEnd || rules === null) {
        await push(e);
        continue;
      }
      const current = rules;
      const { before, after } = await judge(ctx, e);
      const move = movement(current, current, before, after);
      if (move === 'ENTERED' || move === 'STAYED') await push(e);
      else if (move === 'LEFT' && e.type === 'entityChanged') await push({ ...e, leftSubset: true });
    }
    stop();
  });
}
