/**
 * Retrying while Redis refuses for a passing reason: the backoff every loop of the package uses,
 * and a pause that a destroyed stream can cut short.
 * @internal
 * @module
 */

/** First and longest pause between retries while Redis refuses writes (out of memory, busy). */
export const RETRY_MIN_MS = 50;
export const RETRY_MAX_MS = 1000;

/**
 * How many times a script is run again when it finds that the file changed between reading its
 * generation and the script (a `retry` reply): more means writers keep replacing the key.
 */
export const MAX_ATTEMPTS = 10;

/** The pause after `delay`: doubled, at most {@link RETRY_MAX_MS}. */
export function nextDelay(delay: number): number {
  return Math.min(delay * 2, RETRY_MAX_MS);
}

/**
 * `work`'s outcome, or `late()`'s when `ms` pass first (work's own outcome then ignored): a bound on
 * a wait for Redis, whose timer never outlives the race.
 */
export async function within<T, L>(work: Promise<T>, ms: number, late: () => L): Promise<T | L> {
  work.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<L>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pauses between retries that end at once when cancelled (a stream destroyed meanwhile), so that
 * no timer outlives the stream and no wait holds up its close.
 */
export class Pauses {
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #cancelled = false;

  /** Wait `ms`, or less when cancelled meanwhile; at once when cancelled already. */
  wait(ms: number): Promise<void> {
    if (this.#cancelled) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    }).finally(() => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#wake = undefined;
    });
  }

  /** End the pause under way and every later one at once. */
  cancel(): void {
    this.#cancelled = true;
    this.#wake?.();
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }
}

/**
 * Run `call` until it succeeds, pausing with backoff while `retryable(err)` says the failure is
 * passing, for at most `budgetMs` in all; then (or at once for another failure, or when the pauses
 * are cancelled) throw `wrap(err)`.
 */
export async function withRetries<T>(
  call: () => Promise<T>,
  how: { retryable: (err: unknown) => boolean; budgetMs: number; pauses: Pauses; wrap: (err: unknown) => Error },
): Promise<T> {
  const start = Date.now();
  for (let delay = RETRY_MIN_MS; ; delay = nextDelay(delay)) {
    try {
      return await call();
    } catch (err) {
      if (!how.retryable(err) || Date.now() - start + delay > how.budgetMs || how.pauses.cancelled) throw how.wrap(err);
    }
    await how.pauses.wait(delay);
  }
}
