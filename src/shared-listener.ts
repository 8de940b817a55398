/**
 * One listener on a source, however many wait on it: Node warns of a leak past ten listeners on
 * one event of an EventEmitter or an EventTarget, and a program may well make dozens of streams on
 * one client, or cancel dozens with one AbortSignal. The package adds one listener of its own to the
 * source while anything waits, hands each occurrence to every waiter, and removes it once none wait.
 * @internal
 * @module
 */

/** The waiters on one source, and the one listener of the package's on it. */
export interface SharedListener {
  readonly listeners: Set<() => void>;
  readonly fire: () => void;
}

/**
 * Call `listener` once when `source` next fires, through the one listener kept in `registry` for
 * it: `attach(fire)` adds that listener (once: it fires at most once), `detach(fire)` removes it.
 * Returns a function that cancels the wait (and removes the listener when it was the last).
 */
export function shareListener<S extends object>(
  registry: WeakMap<S, SharedListener>,
  source: S,
  attach: (fire: () => void) => void,
  detach: (fire: () => void) => void,
  listener: () => void,
): () => void {
  let entry = registry.get(source);
  if (entry === undefined) {
    const listeners = new Set<() => void>();
    const fire = (): void => {
      // Taken all at once: a listener that waits again (a new stream) waits for the next time.
      const now = [...listeners];
      listeners.clear();
      for (const l of now) l();
    };
    entry = { listeners, fire };
    registry.set(source, entry);
  }
  const { listeners, fire } = entry;
  // A function may wait twice (two streams sharing a callback): each wait is its own.
  const wait = (): void => listener();
  if (listeners.size === 0) attach(fire);
  listeners.add(wait);
  return () => {
    if (!listeners.delete(wait)) return;
    if (listeners.size === 0) detach(fire);
  };
}

const aborts = new WeakMap<AbortSignal, SharedListener>();

/**
 * Call `listener` once `signal` aborts, at once if it has; returns a function that cancels it.
 * Streams given the same signal share one 'abort' listener on it.
 */
export function onceAborted(signal: AbortSignal, listener: () => void): () => void {
  // An aborted signal fires no more 'abort' events.
  if (signal.aborted) {
    listener();
    return () => {};
  }
  return shareListener(
    aborts,
    signal,
    (fire) => signal.addEventListener('abort', fire, { once: true }),
    (fire) => signal.removeEventListener('abort', fire),
    listener,
  );
}
