/**
 * `redis-file`: how a command is stopped. The first SIGINT / SIGTERM, or the connection to Redis
 * lost for longer than --redis-timeout, aborts `interrupt`: every stream a command opened takes its
 * signal and is destroyed, and `run` gives a command that called `cleanUpOnSignal()` (an upload to
 * mark aborted, a partial local file to delete, a command to stop) up to STOP_GRACE_MS to finish,
 * then exits 130 / 143 (or 1). A second signal exits at once.
 * @internal
 * @module
 */

import type { Readable, Writable } from 'node:stream';
import { type ConnectionLost, EXIT, Interrupted } from './errors.js';
import { stopActiveBar } from './progress.js';

/**
 * How long a stopped command (a signal, or Redis gone) has to clean up: destroy its streams (an
 * upload is marked aborted, one round trip), delete a partial local file, stop a command it runs.
 * Then the process exits whatever is still open.
 */
export const STOP_GRACE_MS = 3000;
/** How long a command waits for a destroyed stream to close (see {@link closed}); less than STOP_GRACE_MS. */
const CLOSE_GRACE_MS = 1000;

export const interrupt = new AbortController();
let cleansUp = false;

/** Whether the command, once stopped, has something to clean up that is worth waiting for. */
export function cleanUpOnSignal(on = true): void {
  cleansUp = on;
}

export function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  stopActiveBar();
  if (interrupt.signal.aborted) process.exit(EXIT[signal]);
  interrupt.abort(new Interrupted(signal));
}

/** Rejects with the reason ({@link Interrupted} or {@link ConnectionLost}) once the command is stopped. */
export const interrupted = new Promise<never>((_, reject) => {
  interrupt.signal.addEventListener('abort', () => reject(interrupt.signal.reason as Error), { once: true });
});
interrupted.catch(() => {});

/** If the command was stopped (a signal, or Redis gone), why. */
export function stopReason(): Interrupted | ConnectionLost | undefined {
  return interrupt.signal.aborted ? (interrupt.signal.reason as Interrupted | ConnectionLost) : undefined;
}

/**
 * `work`, unless the command is stopped: then it has STOP_GRACE_MS to settle (no time at all when it
 * has nothing to clean up), after which this rejects with the reason, whatever still hangs.
 */
export function untilStopped<T>(work: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onStop = (): void => {
      timer = setTimeout(() => reject(interrupt.signal.reason), cleansUp ? STOP_GRACE_MS : 0);
    };
    if (interrupt.signal.aborted) onStop();
    else interrupt.signal.addEventListener('abort', onStop, { once: true });
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      interrupt.signal.removeEventListener('abort', onStop);
    });
  });
}

/**
 * `work` (a pipeline, a transfer), or the reason the command was stopped as soon as it is: a stream
 * that does not react to the signal must not hold up the command's clean-up.
 */
export function orStopped<T>(work: Promise<T>): Promise<T> {
  work.catch(() => {});
  return Promise.race([work, interrupted]);
}

/**
 * Resolves once a stream has closed (after its _destroy: an aborted upload is marked by then), or
 * after `graceMs` if it has not: a stream that does not close must not hold the command up.
 */
export function closed(stream: Readable | Writable, graceMs = CLOSE_GRACE_MS): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      stream.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, graceMs);
    stream.once('close', done);
  });
}

/**
 * Resolves once `work` has settled, or after `graceMs` if it has not: as {@link closed}, for an
 * upload the command does not hold the stream of (`sendFiles` settles once its file is marked).
 */
export function settled(work: Promise<unknown>, graceMs = CLOSE_GRACE_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  const done = work.then(
    () => {},
    () => {},
  );
  return Promise.race([done, grace]).finally(() => clearTimeout(timer));
}
