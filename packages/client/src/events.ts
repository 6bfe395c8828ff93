import type { SyncEventName, SyncEvents } from './types.js';

export type Listener<K extends SyncEventName> = (payload: SyncEvents[K]) => void;

/** A tiny typed emitter; a throwing listener does not stop the others or the sync. */
export function createEmitter(onListenerError: (error: unknown) => void) {
  const listeners = new Map<SyncEventName, Set<Listener<never>>>();
  return {
    on<K extends SyncEventName>(event: K, fn: Listener<K>): () => void {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(fn as Listener<never>);
      return () => set.delete(fn as Listener<never>);
    },
    emit<K extends SyncEventName>(event: K, payload: SyncEvents[K]): void {
      for (const fn of listeners.get(event) ?? []) {
        try {
          (fn as Listener<K>)(payload);
        } catch (error) {
          onListenerError(error);
        }
      }
    },
  };
}
