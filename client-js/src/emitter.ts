/** A listener receives the event's payload. */
export type Listener<T> = (payload: T) => void;

/**
 * A small typed event emitter. A throwing listener does not stop the others; its error
 * is reported on the console (listeners are application code, the SDK must not die of
 * them).
 */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private listeners = new Map<PropertyKey, Set<Listener<never>>>();

  /** Call `fn` on every `event`; returns a function that removes it. */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  /** Call `fn` on the next `event` only. */
  once<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(event, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  /** Remove a listener added with {@link on}. */
  off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(fn as Listener<never>);
  }

  /** How many listeners `event` has. */
  listenerCount<K extends keyof Events>(event: K): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<Events[K]>)(payload);
      } catch (err) {
        console.error(`@switchboard/client: a '${String(event)}' listener threw`, err);
      }
    }
  }
}
