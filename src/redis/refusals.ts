/**
 * Connections of the package's own that Redis closes before they are ready, again and again. A
 * server at its `maxclients` limit answers every new connection with an error and closes it: the
 * caller's client, connected before, goes on working, while ioredis (which sees EPIPE or
 * ECONNRESET) and node-redis (which sees the error) connect the package's connection again for
 * ever, and a blocking read queued on it would wait for ever. After {@link REFUSED_LIMIT} such
 * closes in a row, while the caller's client is ready (Redis answers it), the package's connection
 * gives up: what waits on it fails, saying why. While the caller's client is down too (Redis
 * restarting behind a proxy that accepts connections and closes them, say), it goes on trying,
 * within the bounds that apply to an outage.
 * @internal
 * @module
 */

/** Closes before `ready`, in a row, after which a connection of the package's own gives up. */
export const REFUSED_LIMIT = 3;

/** Counts the closes of one connection that come after it connected and before it was ready. */
export class Refusals {
  #connected = false;
  #count = 0;
  #last: Error | undefined;
  #gaveUp = false;
  readonly #callerReady: () => boolean;
  readonly #giveUp: (err: Error) => void;

  /**
   * `giveUp` is called once, with the error to fail what waits with; `callerReady` tells whether
   * the caller's client, from which the connection was made, is ready now.
   */
  constructor(callerReady: () => boolean, giveUp: (err: Error) => void) {
    this.#callerReady = callerReady;
    this.#giveUp = giveUp;
  }

  /** The connection is made (before its handshake). */
  connected(): void {
    this.#connected = true;
  }

  /** The connection is ready: a close from now on is no refusal. */
  ready(): void {
    this.#connected = false;
    this.#count = 0;
  }

  /** The connection failed with `err` (its next close tells whether it was refused). */
  failed(err: Error): void {
    this.#last = err;
  }

  /** The connection closed: a refusal when it had connected and was not ready. */
  closed(): void {
    if (!this.#connected) return;
    this.#connected = false;
    if (++this.#count < REFUSED_LIMIT || this.#gaveUp || !this.#callerReady()) return;
    this.#gaveUp = true;
    this.#giveUp(refusedError(this.#count, this.#last));
  }
}

function refusedError(times: number, last: Error | undefined): Error {
  return new Error(
    `Redis closed the connection the package opened for its blocking reads before it was ready, ${times} times ` +
      `in a row (${last?.message ?? 'closed by the server'}); a server at its maxclients limit does so`,
    { cause: last },
  );
}
