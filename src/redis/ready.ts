/**
 * Waiting for a client to be ready, with one listener on the client however many streams wait:
 * every stream made on a client that is still connecting waits for it (to time its probe of the
 * link), and a listener each would pass Node's limit of ten per event, which warns of a leak.
 * @internal
 * @module
 */

/** What the package takes from a client to hear that it is ready. */
export interface ReadyEmitter {
  once(event: 'ready', listener: () => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
}

/** Per client: the listeners waiting for its next 'ready', and the one listener on the client. */
const waiting = new WeakMap<ReadyEmitter, { listeners: Set<() => void>; fire: () => void }>();

/**
 * Call `listener` once when `client` is next ready; returns a function that cancels it. The
 * client has one 'ready' listener of the package's while any wait, and none once none do.
 */
export function onceReady(client: ReadyEmitter, listener: () => void): () => void {
  let entry = waiting.get(client);
  if (entry === undefined) {
    const listeners = new Set<() => void>();
    const fire = (): void => {
      // Taken all at once: a listener that waits again (a new stream) waits for the next 'ready'.
      const now = [...listeners];
      listeners.clear();
      for (const l of now) l();
    };
    entry = { listeners, fire };
    waiting.set(client, entry);
  }
  const { listeners, fire } = entry;
  // A function may wait twice (two streams sharing a callback): each wait is its own.
  const wait = (): void => listener();
  if (listeners.size === 0) client.once('ready', fire);
  listeners.add(wait);
  return () => {
    if (!listeners.delete(wait)) return;
    if (listeners.size === 0) client.off('ready', fire);
  };
}
