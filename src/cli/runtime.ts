/**
 * `redis-file`: what every command shares: exit codes, the errors it tells apart, interruption by
 * SIGINT / SIGTERM, output, the progress bar, the connection to Redis, error reporting, and
 * {@link run}, which turns a command's outcome into an exit code.
 * @internal
 * @module
 */

import type { Readable, Writable } from 'node:stream';
import { inspect } from 'node:util';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { Cluster, Redis } from 'ioredis';
import { ErrorCodes, RedisFileError } from '../index.js';
import { formatBytes, formatDuration, safeUrl } from './format.js';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_PREFIX = 'rfs:';
export const DEBUG = /^(1|true|yes|on)$/i.test(process.env.REDIS_FILE_DEBUG ?? '');

/** Exit codes. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, SIGINT: 130, SIGTERM: 143 });

/** The options every command takes (before or after its name). */
export interface GlobalOptions {
  /** One URL, or the seeds of a cluster. */
  url: string[];
  /** Connect as a cluster client even with one URL. */
  cluster?: boolean;
  prefix: string;
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

/** SIGINT or SIGTERM arrived; the command stopped (exit 130 / 143). */
export class Interrupted extends Error {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Interruption. A command with something to clean up (an upload to mark aborted, a partial local
// file to delete, a command to stop) calls `cleanUpOnSignal()`: the first SIGINT / SIGTERM then
// aborts it, it cleans up and exits 130 / 143, and a second signal exits at once. Any other command
// exits at once.

export const interrupt = new AbortController();
let cleansUp = false;

/** Whether the first signal aborts {@link interrupt} (the command cleans up) or exits at once. */
export function cleanUpOnSignal(on = true): void {
  cleansUp = on;
}

export function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  activeBar?.stop(false);
  if (!cleansUp || interrupt.signal.aborted) process.exit(EXIT[signal]);
  interrupt.abort(new Interrupted(signal));
}

/** A promise that rejects with the {@link Interrupted} reason once a signal arrives. */
export const interrupted = new Promise<never>((_, reject) => {
  interrupt.signal.addEventListener('abort', () => reject(interrupt.signal.reason as Error), { once: true });
});
interrupted.catch(() => {});

/** If a signal arrived, its {@link Interrupted} reason (to throw), else `undefined`. */
export function interruption(): Interrupted | undefined {
  return interrupt.signal.aborted ? (interrupt.signal.reason as Interrupted) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Output

/** A reader downstream closed our stdout (`| head -c 10`): nothing more to say, stop quietly. */
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') {
    activeBar?.stop(false);
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
  process.stderr.write(`redis-file: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Progress bar: on stderr, only when stderr is a terminal (and not with --quiet).

let activeBar: ProgressBar | undefined;

export class ProgressBar {
  readonly #bar: cliProgress.SingleBar;
  readonly #label: string;
  #total: number | undefined;
  #bytes = 0;
  #done: 'completed' | 'stopped' | undefined;
  readonly #started = Date.now();
  /** Recent (time, bytes) samples: the rate is measured over the last few seconds. */
  #samples: [number, number][] = [];

  constructor(label: string, total: number | undefined) {
    this.#label = label.length > 28 ? `…${label.slice(-27)}` : label;
    this.#total = total;
    this.#bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: (options) => this.#format(options),
      barsize: 24,
      hideCursor: true,
      // Our own SIGINT handling stops the bar; cli-progress must not add listeners of its own.
      gracefulExit: false,
      linewrap: true,
      fps: 8,
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
    });
    this.#bar.start(total ?? 0, 0);
    activeBar = this;
  }

  update(bytes: number, total?: number): void {
    if (total !== undefined && total !== this.#total) {
      this.#total = total;
      this.#bar.setTotal(total);
    }
    this.#bytes = bytes;
    const now = Date.now();
    this.#samples.push([now, bytes]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > 3000) this.#samples.shift();
    this.#bar.update(bytes);
  }

  /** Render the last line (a summary when `completed`, else where it stopped) and release the terminal. */
  stop(completed: boolean): void {
    if (activeBar === this) activeBar = undefined;
    if (this.#done !== undefined) return;
    this.#done = completed ? 'completed' : 'stopped';
    this.#bar.stop();
  }

  #rate(): number {
    const first = this.#samples[0];
    const now = Date.now();
    if (!first || now - first[0] < 200) {
      const elapsed = (now - this.#started) / 1000;
      return elapsed > 0 ? this.#bytes / elapsed : 0;
    }
    return (this.#bytes - first[1]) / ((now - first[0]) / 1000);
  }

  #format(options: cliProgress.Options): string {
    const seconds = (Date.now() - this.#started) / 1000;
    // The last line: how much, how long, at what average rate.
    const rate = this.#done ? (seconds > 0 ? this.#bytes / seconds : 0) : this.#rate();
    const speed = `${formatBytes(Math.round(rate))}/s`;
    const bytes = formatBytes(this.#bytes);
    const bar =
      this.#total === undefined ? '' : `${cliProgress.Format.BarFormat(this.#total > 0 ? Math.min(1, this.#bytes / this.#total) : 1, options)} `;
    if (this.#done === 'completed') return `${this.#label} ${bar}${bytes} in ${formatDuration(seconds)}  ${speed}`;
    if (this.#done === 'stopped') return `${this.#label} ${bar}stopped after ${bytes}`;
    if (this.#total === undefined) return `${this.#label} ${bytes}  ${speed}  ${formatDuration(seconds)}`;
    const fraction = this.#total > 0 ? Math.min(1, this.#bytes / this.#total) : 1;
    const eta = rate > 0 ? formatDuration((this.#total - this.#bytes) / rate) : '--';
    const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
    return `${this.#label} ${bar}${pct}  ${bytes} / ${formatBytes(this.#total)}  ${speed}  ETA ${eta}`;
  }
}

/** Whether to show a bar: stderr is a terminal, no --quiet, and stdout (when written) is not the terminal. */
export function wantBar(quiet: boolean | undefined, writesStdout: boolean): boolean {
  return !quiet && process.stderr.isTTY === true && !(writesStdout && process.stdout.isTTY === true);
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

/**
 * Connect, failing at once (not after retries) when Redis cannot be reached at all; once
 * connected, ioredis reconnects as usual and the streams carry on across dropped connections.
 * Several URLs, or `--cluster`, make a cluster client with those URLs as seeds.
 */
async function connect(g: GlobalOptions): Promise<Client> {
  for (const url of g.url) checkUrl(url);
  if (g.cluster || g.url.length > 1) return connectCluster(g.url);
  const url = g.url[0]!;
  // Loaded here, not at the top: --help and usage errors need no Redis client and answer faster.
  const { Redis } = await import('ioredis');
  // No retries for the first connection: a failure ends the client at once, with no reconnect
  // timer left (and no disconnect() needed, which would arm a 2 s timer of ioredis's own).
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 10_000 });
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
  return redis;
}

/**
 * A cluster client with every URL as a seed. User, password and TLS come from the first URL and
 * apply to every node the cluster names (they all share them in a cluster).
 */
async function connectCluster(urls: string[]): Promise<Cluster> {
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
  return cluster;
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
  return isArgumentError && typeof code === 'string' && code.startsWith('ERR_') ? new UsageError(err.message) : err;
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

/** Resolves once a stream has closed (after its _destroy: an aborted upload is marked by then). */
export function closed(stream: Readable | Writable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
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
  if (err instanceof RedisFileError || err instanceof ConnectError || err instanceof LocalFileError || err instanceof Failure) return true;
  if (isSystemError(err)) return true;
  // ioredis: a reply error (NOAUTH, NOPERM, …), or the connection lost for good.
  return err instanceof Error && (['ReplyError', 'MaxRetriesPerRequestError'].includes(err.name) || /^Connection is closed/.test(err.message));
}

/** The line that says what an expected error is. */
export function describe(e: Error, context: string): string {
  // A RedisFileError's message names the key already ("File "k": …"), with its code after it.
  if (e instanceof RedisFileError) return `${e.message} (${e.code})`;
  if (e instanceof ConnectError || e instanceof LocalFileError || e instanceof Failure) return e.message;
  return `${context}: ${e.message}`;
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
 * Redis and file errors are one line; usage errors exit 2; signals 130 / 143.
 */
export async function run(
  cmd: Command,
  context: string,
  g: GlobalOptions,
  action: (redis: Client) => Promise<number | void>,
  onInterrupt?: (redis: Client, err: Interrupted) => Promise<void>,
): Promise<number> {
  let redis: Client | undefined;
  try {
    redis = await connect(g);
    return (await action(redis)) ?? EXIT.ok;
  } catch (err) {
    if (err instanceof Interrupted) {
      if (redis && onInterrupt) await onInterrupt(redis, err);
      return EXIT[err.signal];
    }
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n${usageHint(cmd)}\n`);
      return EXIT.usage;
    }
    report(err, context);
    return EXIT.failure;
  } finally {
    activeBar?.stop(false);
    if (redis) await disconnect(redis);
  }
}
