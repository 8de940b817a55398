/**
 * Waiting for a client's `ready` or its close, with one listener on the client however many wait:
 * every stream made on a client that is still connecting waits for it (to time its probe of the
 * link), every channel receiver and every lane of blocking reads listens for its close, and a
 * listener each would pass Node's limit of ten per event, which warns of a leak.
 * @internal
 * @module
 */

import { type SharedListener, shareListener } from '../shared-listener.js';

/** The client events the package waits for: `disconnect` is a node-redis cluster's `end`. */
export type ClientEvent = 'ready' | 'end' | 'disconnect';

/** What the package takes from a client to hear of its events. */
export interface ClientEmitter {
  once(event: ClientEvent, listener: () => void): unknown;
  off(event: ClientEvent, listener: () => void): unknown;
}

/** Per event, per client: the listeners waiting for its next occurrence, and the one listener on the client. */
const waiting: Record<ClientEvent, WeakMap<ClientEmitter, SharedListener>> = {
  ready: new WeakMap(),
  end: new WeakMap(),
  disconnect: new WeakMap(),
};

/**
 * Call `listener` once when `client` next emits `event`; returns a function that cancels it. The
 * client has one listener of the package's for the event while any wait, and none once none do.
 */
export function onceEvent(client: ClientEmitter, event: ClientEvent, listener: () => void): () => void {
  return shareListener(
    waiting[event],
    client,
    (fire) => client.once(event, fire),
    (fire) => client.off(event, fire),
    listener,
  );
}

/** Call `listener` once when `client` is next ready; returns a function that cancels it. */
export function onceReady(client: ClientEmitter, listener: () => void): () => void {
  return onceEvent(client, 'ready', listener);
}

/**
 * Call `listener` once `client` emits `event` (`end`, or a node-redis cluster's `disconnect`) and
 * `isClosed()` says it is closed for good (one before a reconnection is passed over); returns a
 * function that cancels it.
 */
export function onceClosed(
  client: ClientEmitter,
  event: 'end' | 'disconnect',
  isClosed: () => boolean,
  listener: () => void,
): () => void {
  let cancel = (): void => {};
  const wait = (): void => {
    cancel = onceEvent(client, event, () => (isClosed() ? listener() : wait()));
  };
  wait();
  return () => cancel();
}
