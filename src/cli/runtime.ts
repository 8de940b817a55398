/**
 * `redis-file`: {@link run}, which connects, runs one command, disconnects and turns the outcome
 * into an exit code; and {@link checked}, which turns the library's argument errors into usage
 * errors.
 * @internal
 * @module
 */

import type { Command } from 'commander';
import { address, type Client, connect, disconnect, type GlobalOptions, watchConnection } from './connection.js';
import { ConnectionLost, EXIT, Failure, Interrupted, UsageError, usageHint } from './errors.js';
import { cliWording } from './format.js';
import { report } from './output.js';
import { stopActiveBar } from './progress.js';
import { stopReason, untilStopped } from './stop.js';

/**
 * Call a library function, turning its argument errors into usage errors: thrown at the call (the
 * stream factories), rejected by the promise it returns (stat, remove, …), or by the first step of
 * the async iterator it returns (list, receiveFiles).
 */
export function checked<T>(make: () => T): T {
  let result: T;
  try {
    result = make();
  } catch (err) {
    throw asUsageError(err);
  }
  if (result instanceof Promise) {
    return result.catch((err: unknown) => {
      throw asUsageError(err);
    }) as T;
  }
  if (isAsyncIterator(result)) return firstStepChecked(result) as T;
  return result;
}

/** The library's argument errors are a TypeError / RangeError with one of Node's ERR_ codes. */
function asUsageError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const isArgumentError = err instanceof TypeError || err instanceof RangeError;
  return isArgumentError && typeof code === 'string' && code.startsWith('ERR_')
    ? new UsageError(cliWording(err.message))
    : err;
}

/** An async iterator such as list() returns; not a stream (a Readable is async iterable too, but has no `next`). */
function isAsyncIterator(value: unknown): value is AsyncIterableIterator<unknown> {
  const it = value as Partial<AsyncIterableIterator<unknown>> | null;
  if (typeof it !== 'object' || it === null) return false;
  return typeof it.next === 'function' && typeof it[Symbol.asyncIterator] === 'function';
}

/** Only the first step: a later TypeError is a failure of the iteration, not of the command line. */
async function* firstStepChecked<U>(iterator: AsyncIterableIterator<U>): AsyncGenerator<U, void, undefined> {
  let step: IteratorResult<U>;
  try {
    step = await iterator.next();
  } catch (err) {
    throw asUsageError(err);
  }
  try {
    while (step.done !== true) {
      yield step.value;
      step = await iterator.next();
    }
  } finally {
    // A consumer that stops early (break, an error) ends the library's iterator too.
    if (step.done !== true) await iterator.return?.();
  }
}

/**
 * Run one command: connect, act, disconnect, and turn the outcome into an exit code. Connection,
 * Redis and file errors are one line; usage errors exit 2; signals 130 / 143; Redis gone for longer
 * than --redis-timeout is one line and exit 1.
 */
export async function run(
  cmd: Command,
  context: string,
  g: GlobalOptions,
  // biome-ignore lint/suspicious/noConfusingVoidType: an action returns its exit code, or nothing for success
  action: (redis: Client) => Promise<number | void>,
  onInterrupt?: (redis: Client, err: Interrupted) => Promise<void>,
): Promise<number> {
  let redis: Client | undefined;
  let unwatch: (() => void) | undefined;
  try {
    const connection = await connect(g);
    redis = connection.client;
    unwatch = watchConnection(redis, address(g), g.redisTimeout * 1000, connection.lastError);
    return (await untilStopped(action(redis))) ?? EXIT.ok;
  } catch (err) {
    const stop = stopReason();
    if (stop instanceof Interrupted || err instanceof Interrupted) {
      const signal = stop instanceof Interrupted ? stop : (err as Interrupted);
      unwatch?.();
      if (redis && onInterrupt) await onInterrupt(redis, signal);
      return EXIT[signal.signal];
    }
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n${usageHint(cmd)}\n`);
      return EXIT.usage;
    }
    // Redis gone: that is the story, whatever the streams failed with on the way (a command that
    // tells it in its own words throws a Failure caused by it).
    report(stop instanceof ConnectionLost && !(err instanceof Failure && err.cause === stop) ? stop : err, context);
    return EXIT.failure;
  } finally {
    unwatch?.();
    stopActiveBar();
    if (redis) await disconnect(redis);
  }
}
