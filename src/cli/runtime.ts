/**
 * `redis-file`: what every command shares: exit codes, the errors it tells apart, how a command is
 * stopped (SIGINT / SIGTERM, or Redis gone for longer than --redis-timeout), output, the connection
 * to Redis and what it says while the connection is lost, error reporting, and {@link run}, which
 * turns a command's outcome into an exit code.
 * @internal
 * @module
 */

import type { Readable, Writable } from 'node:stream';
import { inspect } from 'node:util';
import type { Command } from 'commander';
import type { Cluster, Redis } from 'ioredis';
import { ErrorCodes, RedisFileError } from '../index.js';
import { cliWording, safeUrl } from './format.js';
import { barActive, stopActiveBar } from './progress.js';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_PREFIX = 'rfs:';
export const DEBUG = /^(1|true|yes|on)$/i.test(process.env.REDIS_FILE_DEBUG ?? '');
/** How long Redis may stay unreachable while a command runs before it fails (--redis-timeout), in seconds. */
export const DEFAULT_REDIS_TIMEOUT = 20;

/**
 * How long a stopped command (a signal, or Redis gone) has to clean up: destroy its streams (an
 * upload is marked aborted, one round trip), delete a partial local file, stop a command it runs.
 * Then the process exits whatever is still open.
 */
export const STOP_GRACE_MS = 3000;
/** How long a command waits for a destroyed stream to close (see {@link closed}); less than STOP_GRACE_MS. */
const CLOSE_GRACE_MS = 1000;
/** How long the connection is lost before a line says so, and how often the line comes again. */
const LOST_FIRST_LINE_MS = 1000;
const LOST_LINE_EVERY_MS = 5000;

/** Exit codes. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, SIGINT: 130, SIGTERM: 143 });

/** The options every command takes (before or after its name). */
export interface GlobalOptions {
  /** One URL, or the seeds of a cluster. */
  url: string[];
  /** Connect as a cluster client even with one URL. */
  cluster?: boolean;
  prefix: string;
  /** Seconds Redis may stay unreachable once connected before the command fails. */
  redisTimeout: number;
}

/** The client a command works with: one Redis, or a cluster. */
export type Client = Redis | Cluster;

// ---------------------------------------------------------------------------------------------
// Errors the command tells apart

/** Bad arguments found after commander's parsing (exit 2). */
export class UsageError extends Error {}

/** The connection to Redis could not be opened (exit 1, no stack). */
export class ConnectError extends Error {}

/** A local file could not be read or written (exit 1, no stack). */
export class LocalFileError extends Error {}

/** A failure whose message says it all, naming what failed and why (exit 1, one line, no stack). */
export class Failure extends Error {}

/** The connection to Redis was lost and not restored within --redis-timeout (exit 1, one line). */
export class ConnectionLost extends Error {}

/** SIGINT or SIGTERM arrived; the command stopped (exit 130 / 143). */
export class Interrupted extends Error {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Stopping. The first SIGINT / SIGTERM, or the connection to Redis lost for longer than
// --redis-timeout, aborts `interrupt`: every stream a command opened takes its signal and is
// destroyed, and `run` gives a command that called `cleanUpOnSignal()` (an upload to mark aborted,
// a partial local file to delete, a command to stop) up to STOP_GRACE_MS to finish, then exits
// 130 / 143 (or 1). A second signal exits at once.

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
function untilStopped<T>(work: Promise<T>): Promise<T> {
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

// ---------------------------------------------------------------------------------------------
// Output

/** A reader downstream closed our stdout (`| head -c 10`): nothing more to say, stop quietly. */
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') {
    stopActiveBar();
    process.exit(EXIT.ok);
  }
});

/** Write to stdout, waiting while the pipe is full. */
export async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) {
    await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

export function warn(line: string): void {
  // Over a progress bar, the line goes where the bar was; the bar is drawn again under it.
  const clear = barActive() ? '\r\x1b[K' : '';
  process.stderr.write(`${clear}redis-file: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Connection

function checkUrl(url: string): void {
  if (/^rediss?:\/\/./i.test(url) || url.startsWith('/')) {
    try {
      if (!url.startsWith('/')) new URL(url);
      return;
    } catch {
      // fall through
    }
  }
  throw new UsageError(`--url / REDIS_URL: expected redis://[[user]:password@]host[:port][/db], rediss://… (TLS) or the path of a Unix socket, got ${JSON.stringify(safeUrl(url))}`);
}

/** Where Redis is, for messages: host:port (or the socket's path), without user or password. */
function address(g: GlobalOptions): string {
  return g.url.map((url) => (url.startsWith('/') ? url : new URL(url).host)).join(', ');
}

/**
 * Connect, failing at once (not after retries) when Redis cannot be reached at all; once
 * connected, ioredis reconnects as usual and the streams carry on across dropped connections,
 * for as long as {@link watchConnection} lets them.
 * Several URLs, or `--cluster`, make a cluster client with those URLs as seeds.
 */
async function connect(g: GlobalOptions): Promise<{ client: Client; lastError: () => Error | undefined }> {
  for (const url of g.url) checkUrl(url);
  if (g.cluster || g.url.length > 1) return connectCluster(g.url);
  const url = g.url[0]!;
  // Loaded here, not at the top: --help and usage errors need no Redis client and answer faster.
  const { Redis } = await import('ioredis');
  // No retries for the first connection: a failure ends the client at once, with no reconnect
  // timer left (and no disconnect() needed, which would arm a 2 s timer of ioredis's own).
  // A command waits for a lost connection to come back for as long as --redis-timeout says,
  // not for a number of reconnection attempts.
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 10_000, maxRetriesPerRequest: null });
  const reconnect = redis.options.retryStrategy;
  redis.options.retryStrategy = () => null;
  const lastError = watchErrors(redis);
  try {
    await Promise.race([redis.connect(), interrupted]);
  } catch (err) {
    if (redis.status !== 'end') redis.disconnect();
    throw connectError(err, lastError(), safeUrl(url));
  }
  // Connected: from now on a dropped connection is reconnected as ioredis does by default (the
  // blocking connections of readers, duplicated from this client, inherit it).
  redis.options.retryStrategy = reconnect;
  return { client: redis, lastError };
}

/**
 * A cluster client with every URL as a seed. User, password and TLS come from the first URL and
 * apply to every node the cluster names (they all share them in a cluster).
 */
async function connectCluster(urls: string[]): Promise<{ client: Cluster; lastError: () => Error | undefined }> {
  if (urls.some((url) => url.startsWith('/'))) throw new UsageError('--cluster: a cluster is reached over TCP, not a Unix socket');
  const { Cluster } = await import('ioredis');
  const first = new URL(urls[0]!);
  const seeds = urls.map((url) => {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) };
  });
  const cluster = new Cluster(seeds, {
    lazyConnect: true,
    // No retries for the first connection, as for one server.
    clusterRetryStrategy: () => null,
    redisOptions: {
      connectTimeout: 10_000,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  const lastError = watchErrors(cluster);
  try {
    await Promise.race([cluster.connect(), interrupted]);
  } catch (err) {
    cluster.disconnect();
    throw connectError(err, lastError(), urls.map(safeUrl).join(', '));
  }
  // Connected: from now on ioredis follows slot moves and failovers as usual.
  cluster.options.clusterRetryStrategy = (times: number) => Math.min(100 + times * 2, 2000);
  return { client: cluster, lastError };
}

/** Commands report their own failures; without a listener ioredis would also print them. */
function watchErrors(client: Client): () => Error | undefined {
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  return () => lastError;
}

function connectError(err: unknown, lastError: Error | undefined, where: string): Error {
  if (err instanceof Interrupted) return err;
  const why = lastError ?? (err as Error);
  const hint = /NOAUTH|WRONGPASS/.test(why.message) ? ' (give the user and password in the URL: redis://user:password@host:port)' : '';
  return new ConnectError(`cannot connect to Redis at ${where}: ${why.message}${hint}`, { cause: why });
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

/**
 * While the command runs: once the connection has been lost for a second, say so on stderr (again
 * every few seconds, and once more when it is back); once it has been lost for `timeoutMs`, stop
 * the command with a {@link ConnectionLost} and close the client, which fails whatever still waits
 * on it. Returns the function that stops watching.
 */
function watchConnection(
  client: Client,
  where: string,
  timeoutMs: number,
  lastError: () => Error | undefined,
): () => void {
  let lostAt: number | undefined;
  let said = false;
  let line: NodeJS.Timeout | undefined;
  let giveUp: NodeJS.Timeout | undefined;
  const clear = (): void => {
    clearTimeout(line);
    clearTimeout(giveUp);
    lostAt = undefined;
    said = false;
  };
  const lost = (): void => {
    if (lostAt !== undefined || interrupt.signal.aborted) return;
    const since = Date.now();
    lostAt = since;
    const tell = (): void => {
      warn(`lost the connection to ${where}, retrying (${seconds(Date.now() - since)} so far)\u2026`);
      said = true;
      line = setTimeout(tell, LOST_LINE_EVERY_MS);
    };
    line = setTimeout(tell, LOST_FIRST_LINE_MS);
    giveUp = setTimeout(() => {
      clear();
      const why = lastError();
      const lost = `lost the connection to Redis at ${where} and could not reconnect within ${seconds(timeoutMs)}`;
      interrupt.abort(new ConnectionLost(`${lost} (--redis-timeout)${why ? `: ${why.message}` : ''}`, { cause: why }));
      client.disconnect();
    }, timeoutMs);
  };
  const back = (): void => {
    if (lostAt === undefined) return;
    if (said) warn(`reconnected to ${where} after ${seconds(Date.now() - lostAt)}`);
    clear();
  };
  client.on('close', lost);
  client.on('ready', back);
  return () => {
    clear();
    client.off('close', lost);
    client.off('ready', back);
  };
}

/** QUIT when connected (bounded), then close the socket: nothing may keep the process alive. */
async function disconnect(redis: Client): Promise<void> {
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      redis.quit().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1000);
      }),
    ]);
    clearTimeout(timer);
  }
  redis.disconnect();
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
  return isArgumentError && typeof code === 'string' && code.startsWith('ERR_') ? new UsageError(cliWording(err.message)) : err;
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

export function notFound(key: string): RedisFileError {
  return new RedisFileError(ErrorCodes.NOT_FOUND, `File ${JSON.stringify(key)}: no file is stored at this key`, { key });
}

// ---------------------------------------------------------------------------------------------
// Error reporting

/** Node's system errors (ECONNREFUSED, ENOENT, …) carry a code and a syscall. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** Errors that are the world's state, not a bug: reported in one line, without a stack. */
export function isExpected(err: unknown): boolean {
  if (
    err instanceof RedisFileError ||
    err instanceof ConnectError ||
    err instanceof ConnectionLost ||
    err instanceof LocalFileError ||
    err instanceof Failure
  ) {
    return true;
  }
  if (isSystemError(err)) return true;
  // ioredis: a reply error (NOAUTH, NOPERM, …), or the connection lost for good.
  return err instanceof Error && (['ReplyError', 'MaxRetriesPerRequestError'].includes(err.name) || /^Connection is closed/.test(err.message));
}

/**
 * The line that says what an expected error is, in the command's words: the options the library
 * names are the command's flags (see {@link cliWording}).
 */
export function describe(e: Error, context: string): string {
  // A RedisFileError's message names the key already ("File "k": …"), with its code after it.
  if (e instanceof RedisFileError) return `${cliWording(e.message)} (${e.code})`;
  if (e instanceof ConnectError || e instanceof LocalFileError || e instanceof Failure) return e.message;
  if (e.name === 'MaxRetriesPerRequestError') {
    return `${context}: the connection to Redis was lost and could not be restored`;
  }
  return `${context}: ${cliWording(e.message)}`;
}

/**
 * Print one line for an expected error (returns true), or the stack of an unexpected one
 * (returns false). With REDIS_FILE_DEBUG=1 the full error, with its cause, follows.
 */
export function report(err: unknown, context: string): boolean {
  const expected = isExpected(err);
  if (expected) {
    warn(describe(err as Error, context));
  } else {
    warn(`${context}: unexpected error (a bug; please report it with this output):`);
  }
  if (DEBUG || !expected) process.stderr.write(`${inspect(err, { depth: 6 })}\n`);
  return expected;
}

export function usageHint(cmd: Command): string {
  return `Usage: redis-file ${cmd.name()} ${cmd.usage()}\nRun "redis-file ${cmd.name()} --help" for the options.`;
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
