#!/usr/bin/env node
/**
 * `redis-file`: the package's command. Stores files in Redis and reads them back with the library's
 * streams: put, get, cat (follow a file being written), stat, ls, rm, expire, mv.
 *
 * Exit codes: 0 success; 1 failure (one line on stderr naming the key and the reason); 2 usage
 * error; 130 / 143 interrupted by SIGINT / SIGTERM (an upload is then marked aborted first).
 * Set REDIS_FILE_DEBUG=1 to print the stack (and cause) of every error.
 *
 * Not part of the library API: the package's entry point (index.ts) does not export it.
 * @internal
 * @module
 */

import { randomBytes } from 'node:crypto';
import { fstatSync, readFileSync } from 'node:fs';
import { type FileHandle, open, rename as renameLocal, rm, stat as statLocal } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inspect } from 'node:util';
import cliProgress from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Redis } from 'ioredis';
import {
  createRedisReadStream,
  createRedisWriteStream,
  ErrorCodes,
  expire,
  type FileStat,
  list,
  type Progress,
  RedisFileError,
  type RedisWriteStream,
  remove,
  rename,
  stat,
} from './index.js';

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const DEFAULT_PREFIX = 'rfs:';
const DEBUG = /^(1|true|yes|on)$/i.test(process.env.REDIS_FILE_DEBUG ?? '');
/** How long `put` holds back the end of its input, for a signal that comes with it (see putCommand). */
const END_GRACE_MS = 50;
/** How long the process may linger once the command is done before it is ended (see main). */
const LINGER_MS = 2000;

/** Exit codes. */
const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, SIGINT: 130, SIGTERM: 143 });

// ---------------------------------------------------------------------------------------------
// Errors the command tells apart

/** Bad arguments found after commander's parsing (exit 2). */
class UsageError extends Error {}

/** The connection to Redis could not be opened (exit 1, no stack). */
class ConnectError extends Error {}

/** A local file could not be read or written (exit 1, no stack). */
class LocalFileError extends Error {}

/** SIGINT or SIGTERM arrived; the command stopped (exit 130 / 143). */
class Interrupted extends Error {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Interruption. A command with something to clean up (an upload to mark aborted, a partial local
// file to delete) sets `cleansUp`: the first SIGINT / SIGTERM then aborts it, it cleans up and
// exits 130 / 143, and a second signal exits at once. Any other command exits at once.

const interrupt = new AbortController();
let cleansUp = false;

function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  activeBar?.stop(false);
  if (!cleansUp || interrupt.signal.aborted) process.exit(EXIT[signal]);
  interrupt.abort(new Interrupted(signal));
}

/** A promise that rejects with the {@link Interrupted} reason once a signal arrives. */
const interrupted = new Promise<never>((_, reject) => {
  interrupt.signal.addEventListener('abort', () => reject(interrupt.signal.reason as Error), { once: true });
});
interrupted.catch(() => {});

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
async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) {
    await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

function warn(line: string): void {
  process.stderr.write(`redis-file: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; with `trim`, 262144 → "256 KiB" (not "256.0 KiB"). */
function formatBytes(n: number, trim = false): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${trim && Number.isInteger(v) ? v : v.toFixed(1)} ${UNITS[i]}`;
}

/** Local time as "2026-11-30 10:15:02" (or without seconds). */
function formatDate(d: Date, seconds = true): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return seconds ? `${date}:${p(d.getSeconds())}` : date;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** Keys may hold spaces or control characters: quote those so that one file stays one line. */
function showKey(key: string): string {
  return /[\s\x00-\x1f\x7f"]/.test(key) ? JSON.stringify(key) : key;
}

/** What `stat --json` and `ls --json` print for a file: the FileStat, dates in ISO 8601. */
function statJson(s: FileStat): string {
  return JSON.stringify({
    key: s.key,
    state: s.state,
    size: s.size,
    chunks: s.chunks,
    chunkSize: s.chunkSize,
    contentEncoding: s.contentEncoding,
    contentType: s.contentType ?? null,
    metadata: s.metadata,
    crc32: s.crc32 ?? null,
    created: s.created.toISOString(),
    updated: s.updated.toISOString(),
    ttl: s.ttl ?? null,
  });
}

// ---------------------------------------------------------------------------------------------
// Progress bar: on stderr, only when stderr is a terminal (and not with --quiet).

let activeBar: ProgressBar | undefined;

class ProgressBar {
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
function wantBar(quiet: boolean | undefined, writesStdout: boolean): boolean {
  return !quiet && process.stderr.isTTY === true && !(writesStdout && process.stdout.isTTY === true);
}

// ---------------------------------------------------------------------------------------------
// Argument parsers (commander calls them; InvalidArgumentError is a usage error, exit 2)

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "262144", "256k", "256KiB", "1m", "1.5M" → bytes (binary multiples). */
function parseBytes(text: string, min: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  const value = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`expected a whole number of bytes${min > 0 ? ` of at least ${min}` : ''}, optionally with a suffix k, m, g (1024-based), as in 256k or 1m`);
  }
  return value;
}

const TIME_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** A duration: a plain number in `plainUnit` ('ms' or 's'), or with a unit (500ms, 30s, 5m, 2h, 1d). */
function parseDuration(text: string, plainUnit: 'ms' | 's', min: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  let value = NaN;
  if (m) {
    const seconds = Number(m[1]) * TIME_UNITS[(m[2] ?? plainUnit).toLowerCase()]!;
    value = Math.round(plainUnit === 'ms' ? seconds * 1000 : seconds);
  }
  if (!Number.isSafeInteger(value) || value < min || value > 2 ** 31 - 1) {
    const units = plainUnit === 'ms' ? 'ms, s, m, h' : 's, m, h, d';
    throw new InvalidArgumentError(
      `expected ${plainUnit === 'ms' ? 'milliseconds' : 'seconds'}${min > 0 ? ` (at least ${min})` : ''}, or a number with a unit: ${units} (as in 30s or 5m)`,
    );
  }
  return value;
}

function parseMeta(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value');
  return { ...previous, [text.slice(0, eq)]: text.slice(eq + 1) };
}

// ---------------------------------------------------------------------------------------------
// Connection

interface GlobalOptions {
  url: string;
  prefix: string;
}

/** The URL with its password masked, for messages. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

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
 */
async function connect(url: string): Promise<Redis> {
  checkUrl(url);
  // Loaded here, not at the top: --help and usage errors need no Redis client and answer faster.
  const { Redis } = await import('ioredis');
  // No retries for the first connection: a failure ends the client at once, with no reconnect
  // timer left (and no disconnect() needed, which would arm a 2 s timer of ioredis's own).
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 10_000 });
  const reconnect = redis.options.retryStrategy;
  redis.options.retryStrategy = () => null;
  let lastError: Error | undefined;
  // Commands report their own failures; without a listener ioredis would also print them.
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await Promise.race([redis.connect(), interrupted]);
  } catch (err) {
    if (redis.status !== 'end') redis.disconnect();
    if (err instanceof Interrupted) throw err;
    const why = lastError ?? (err as Error);
    const hint = /NOAUTH|WRONGPASS/.test(why.message) ? ' (give the user and password in the URL: redis://user:password@host:port)' : '';
    throw new ConnectError(`cannot connect to Redis at ${safeUrl(url)}: ${why.message}${hint}`, { cause: why });
  }
  // Connected: from now on a dropped connection is reconnected as ioredis does by default (the
  // blocking connections of readers, duplicated from this client, inherit it).
  redis.options.retryStrategy = reconnect;
  return redis;
}

/** QUIT when connected (bounded), then close the socket: nothing may keep the process alive. */
async function disconnect(redis: Redis): Promise<void> {
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

/** Call a library factory, turning its synchronous argument errors into usage errors. */
function checked<T>(make: () => T): T {
  try {
    return make();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if ((err instanceof TypeError || err instanceof RangeError) && typeof code === 'string' && code.startsWith('ERR_')) {
      throw new UsageError(err.message);
    }
    throw err;
  }
}

/** Resolves once a stream has closed (after its _destroy: an aborted upload is marked by then). */
function closed(stream: Readable | Writable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

// ---------------------------------------------------------------------------------------------
// Commands

interface PutOptions {
  gzip?: boolean;
  chunkSize?: number;
  ttl?: number;
  overwrite?: boolean;
  contentType?: string;
  meta?: Record<string, string>;
  quiet?: boolean;
}

async function putCommand(redis: Redis, g: GlobalOptions, source: string, key: string, o: PutOptions): Promise<void> {
  cleansUp = true;
  // The local side first: a missing file must fail before anything is stored.
  let input: Readable;
  let size: number | undefined;
  let handle: FileHandle | undefined;
  if (source === '-') {
    input = process.stdin;
    try {
      const st = fstatSync(0);
      if (st.isFile()) size = st.size;
    } catch {
      // not a regular file: the size is unknown
    }
  } else {
    try {
      handle = await open(source, 'r');
      const st = await handle.stat();
      if (st.isDirectory()) throw Object.assign(new Error(`${source}: is a directory`), { code: 'EISDIR' });
      if (st.isFile()) size = st.size;
    } catch (err) {
      await handle?.close();
      throw new LocalFileError(`cannot read ${source}: ${(err as Error).message}`, { cause: err });
    }
    input = handle.createReadStream();
  }
  let writer: RedisWriteStream;
  try {
    writer = checked(() =>
      createRedisWriteStream(redis, key, {
        prefix: g.prefix,
        compress: o.gzip ?? false,
        chunkSize: o.chunkSize,
        ttl: o.ttl,
        overwrite: o.overwrite ?? false,
        contentType: o.contentType,
        metadata: o.meta,
        signal: interrupt.signal,
      }),
    );
  } catch (err) {
    input.destroy();
    throw err;
  }
  // No bar over what someone is typing into `put -`.
  const bar = wantBar(o.quiet, false) && !(source === '-' && process.stdin.isTTY) ? new ProgressBar(key, size) : undefined;
  // Counts the bytes read from the source: with --gzip the stored bytes are fewer, and the file
  // size is what the bar runs to.
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      bar?.update(bytes);
      callback(null, chunk);
    },
    // Ctrl-C in a terminal signals the whole pipeline (`producer | redis-file put - key`): the
    // producer dies, so our input ends at the moment the signal arrives, and the end may be seen
    // first. Let a signal in flight land before the end goes on to the writer, which would
    // otherwise commit the cut input as a complete file.
    flush(callback) {
      setTimeout(() => callback(interrupt.signal.aborted ? (interrupt.signal.reason as Error) : null), END_GRACE_MS);
    },
  });
  try {
    await pipeline(input, counter, writer);
    bar?.update(bytes, bytes);
    bar?.stop(true);
  } catch (err) {
    // Whatever failed, the writer marks the file aborted in its destroy: wait for that.
    await closed(writer);
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  } finally {
    bar?.stop(false);
    await handle?.close().catch(() => {});
  }
}

interface ReadOptions {
  decompress?: boolean;
  follow?: boolean;
  start?: number;
  end?: number;
  waitForCreate?: number;
  quiet?: boolean;
}

/** Read one file into `dest` (stdout when `undefined`), with a progress bar when wanted. */
async function readInto(redis: Redis, g: GlobalOptions, key: string, o: ReadOptions, dest: Writable | undefined): Promise<void> {
  const showBar = wantBar(o.quiet, dest === undefined);
  const reader = checked(() =>
    createRedisReadStream(redis, key, {
      prefix: g.prefix,
      decompress: o.decompress ?? false,
      follow: o.follow ?? true,
      start: o.start,
      end: o.end,
      waitForCreate: o.waitForCreate,
      signal: interrupt.signal,
      progressInterval: showBar ? 100 : undefined,
    }),
  );
  let bar: ProgressBar | undefined;
  if (showBar) {
    reader.on('progress', ({ bytes, total }: Progress) => {
      // The stored size is known for a complete file; a range reads part of it.
      const expected = total === undefined ? undefined : Math.max(0, Math.min(o.end ?? Infinity, total - 1) - (o.start ?? 0) + 1);
      bar ??= new ProgressBar(key, expected);
      bar.update(bytes, expected);
    });
  }
  try {
    if (dest === undefined) await pipeline(reader, process.stdout, { end: false });
    else await pipeline(reader, dest);
    bar?.stop(true);
  } catch (err) {
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  } finally {
    bar?.stop(false);
    await closed(reader);
  }
}

async function getCommand(redis: Redis, g: GlobalOptions, key: string, path: string, o: ReadOptions): Promise<void> {
  if (path === '-') {
    await readInto(redis, g, key, o, undefined);
    return;
  }
  // A directory receives the file under the key's last path segment, as with cp.
  let target = path;
  const existing = await statLocal(path).catch(() => undefined);
  if (existing?.isDirectory()) {
    const name = basename(key);
    if (name === '' || name === '.' || name === '..') throw new UsageError(`${path} is a directory and the key has no file name to use in it`);
    target = join(path, name);
  }
  const targetStat = target === path ? existing : await statLocal(target).catch(() => undefined);
  // Regular files are written to a temporary name and renamed when complete, so that a failed or
  // interrupted download never leaves a partial file behind; devices and FIFOs are written to.
  const direct = targetStat !== undefined && !targetStat.isFile();
  cleansUp = !direct;
  const temp = direct ? target : join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.part`);
  let handle: FileHandle;
  try {
    handle = await open(temp, direct ? 'w' : 'wx');
  } catch (err) {
    throw new LocalFileError(`cannot write ${target}: ${(err as Error).message}`, { cause: err });
  }
  const output = handle.createWriteStream();
  try {
    await readInto(redis, g, key, o, output);
    if (!direct) await renameLocal(temp, target);
  } catch (err) {
    // The pipeline destroyed it, unless the read failed before it started.
    output.destroy();
    await closed(output);
    if (!direct) await rm(temp, { force: true });
    throw err;
  }
}

async function catCommand(redis: Redis, g: GlobalOptions, keys: string[], o: ReadOptions): Promise<void> {
  for (const key of keys) await readInto(redis, g, key, { ...o, follow: true }, undefined);
}

async function statCommand(redis: Redis, g: GlobalOptions, key: string, o: { json?: boolean }): Promise<void> {
  const s = await checked(() => stat(redis, key, { prefix: g.prefix }));
  if (o.json) {
    await out(`${statJson(s)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['key', showKey(s.key)],
    ['state', s.state],
    ['size', `${formatBytes(s.size)} (${s.size} bytes)${s.state === 'writing' ? ' so far' : ''}`],
    ['chunks', `${s.chunks} of ${formatBytes(s.chunkSize, true)}`],
    ['encoding', s.contentEncoding],
    ['type', s.contentType ?? '-'],
    ['metadata', Object.keys(s.metadata).length === 0 ? '-' : Object.entries(s.metadata).map(([k, v]) => `${k}=${v}`).join('\n          ')],
    ['crc32', s.crc32 ?? '-'],
    ['created', formatDate(s.created)],
    ['updated', formatDate(s.updated)],
    ['expires', s.ttl === undefined ? 'never' : `in ${formatDuration(s.ttl)} (${s.ttl} s)`],
  ];
  await out(rows.map(([name, value]) => `${`${name}:`.padEnd(10)}${value}\n`).join(''));
}

async function lsCommand(redis: Redis, g: GlobalOptions, pattern: string, o: { json?: boolean }): Promise<void> {
  // SCAN may yield a file twice (while Redis resizes its tables): print each once.
  const seen = new Set<string>();
  const files = checked(() => list(redis, { prefix: g.prefix, match: pattern }));
  const all: FileStat[] = [];
  for await (const file of files) {
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    if (seen.has(file.key)) continue;
    seen.add(file.key);
    // JSON lines stream as they come; the listing for people is sorted by key, so it waits.
    if (o.json) await out(`${statJson(file)}\n`);
    else all.push(file);
  }
  if (o.json) return;
  all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const lines = all.map((f) => {
    const encoding = f.contentEncoding === 'identity' ? '-' : f.contentEncoding;
    return `${f.state.padEnd(8)} ${formatBytes(f.size).padStart(10)}  ${encoding.padEnd(8)} ${formatDate(f.updated, false)}  ${showKey(f.key)}\n`;
  });
  for (let i = 0; i < lines.length; i += 1000) await out(lines.slice(i, i + 1000).join(''));
}

function notFound(key: string): RedisFileError {
  return new RedisFileError(ErrorCodes.NOT_FOUND, `File ${JSON.stringify(key)}: no file is stored at this key`, { key });
}

async function rmCommand(redis: Redis, g: GlobalOptions, keys: string[], o: { force?: boolean }): Promise<number> {
  let failed = 0;
  for (const key of keys) {
    try {
      if (!(await checked(() => remove(redis, key, { prefix: g.prefix }))) && !o.force) throw notFound(key);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      // One line per key that could not be removed; the others are still removed.
      report(err, `rm ${JSON.stringify(key)}`);
      failed++;
    }
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

/** Say what an interrupted upload left behind: normally an aborted file; complete if the end record won the race. */
async function reportInterruptedPut(redis: Redis, g: GlobalOptions, key: string, err: Interrupted): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const state = await Promise.race([
    checked(() => stat(redis, key, { prefix: g.prefix })).then(
      (s) => s.state as string,
      (e: unknown) => (e instanceof RedisFileError && e.code === ErrorCodes.NOT_FOUND ? 'none' : undefined),
    ),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 2000);
    }),
  ]);
  clearTimeout(timer);
  const what =
    state === 'aborted'
      ? 'the file is marked aborted'
      : state === 'complete'
        ? 'the upload had already completed: the file is complete'
        : state === 'none'
          ? 'nothing was stored'
          : state === undefined
            ? 'its state could not be checked (see redis-file stat)'
            : `the file is in state ${state}`;
  warn(`File ${JSON.stringify(key)}: put interrupted by ${err.signal}: ${what}`);
}

async function expireCommand(redis: Redis, g: GlobalOptions, key: string, seconds: number | null): Promise<void> {
  if (!(await checked(() => expire(redis, key, seconds, { prefix: g.prefix })))) throw notFound(key);
}

async function mvCommand(redis: Redis, g: GlobalOptions, from: string, to: string, o: { overwrite?: boolean }): Promise<void> {
  await checked(() => rename(redis, from, to, { prefix: g.prefix, overwrite: o.overwrite ?? false }));
}

// ---------------------------------------------------------------------------------------------
// Error reporting

/** Node's system errors (ECONNREFUSED, ENOENT, …) carry a code and a syscall. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** Errors that are the world's state, not a bug: reported in one line, without a stack. */
function isExpected(err: unknown): boolean {
  if (err instanceof RedisFileError || err instanceof ConnectError || err instanceof LocalFileError) return true;
  if (isSystemError(err)) return true;
  // ioredis: a reply error (NOAUTH, NOPERM, …), or the connection lost for good.
  return err instanceof Error && (['ReplyError', 'MaxRetriesPerRequestError'].includes(err.name) || /^Connection is closed/.test(err.message));
}

/**
 * Print one line for an expected error (returns true), or the stack of an unexpected one
 * (returns false). With REDIS_FILE_DEBUG=1 the full error, with its cause, follows.
 */
function report(err: unknown, context: string): boolean {
  const expected = isExpected(err);
  if (expected) {
    const e = err as Error;
    // A RedisFileError's message names the key already ("File "k": …"), with its code after it.
    if (e instanceof RedisFileError) warn(`${e.message} (${e.code})`);
    else if (e instanceof ConnectError || e instanceof LocalFileError) warn(e.message);
    else warn(`${context}: ${e.message}`);
  } else {
    warn(`${context}: unexpected error (a bug; please report it with this output):`);
  }
  if (DEBUG || !expected) process.stderr.write(`${inspect(err, { depth: 6 })}\n`);
  return expected;
}

/**
 * Run one command: connect, act, disconnect, and turn the outcome into an exit code. Connection,
 * Redis and file errors are one line; usage errors exit 2; signals 130 / 143.
 */
async function run(
  cmd: Command,
  context: string,
  g: GlobalOptions,
  action: (redis: Redis) => Promise<number | void>,
  onInterrupt?: (redis: Redis, err: Interrupted) => Promise<void>,
): Promise<number> {
  let redis: Redis | undefined;
  try {
    redis = await connect(g.url);
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

// ---------------------------------------------------------------------------------------------
// The program

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function usageHint(cmd: Command): string {
  return `Usage: redis-file ${cmd.name()} ${cmd.usage()}\nRun "redis-file ${cmd.name()} --help" for the options.`;
}

const bytesArg = (min: number) => (text: string) => parseBytes(text, min);

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('redis-file');
  program
    .description('Store files in Redis and read them back, also while they are being written.')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print help for the command')
    .helpCommand('help [command]', 'print help for a command')
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .addOption(
      new Option('--url <url>', 'Redis to use: a redis:// or rediss:// (TLS) URL, with user and password if needed')
        .env('REDIS_URL')
        .default(DEFAULT_URL),
    )
    .addOption(
      new Option('--prefix <prefix>', 'namespace of the Redis keys of every file')
        .argParser((text: string) => {
          if (/[{}]/.test(text)) throw new InvalidArgumentError('a prefix cannot hold { or }');
          return text;
        })
        .default(DEFAULT_PREFIX),
    );

  const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const quiet = (): Option => new Option('-q, --quiet', 'no progress bar');

  program
    .command('put')
    .summary('store a local file (or standard input) at a key')
    .description(
      'Store a local file, or standard input with -, at a key. The file becomes complete only once every byte is ' +
        'stored: a failed or interrupted upload (Ctrl-C) leaves it aborted, never half-written.',
    )
    .argument('<path|->', 'file to store, or - for standard input')
    .argument('<key>', 'name of the file in Redis')
    .option('-z, --gzip', 'gzip on the way in (stored with content encoding gzip)')
    .addOption(new Option('--chunk-size <bytes>', 'bytes per stored chunk; suffixes k, m (1024-based)').argParser(bytesArg(1)).default(256 * 1024, '256k'))
    .addOption(new Option('--ttl <seconds>', 'expire the file after this long (or 30m, 12h, 7d, …)').argParser((t) => parseDuration(t, 's', 1)))
    .option('-f, --overwrite', 'replace a complete or aborted file stored at the key')
    .option('--content-type <type>', 'MIME type stored with the file')
    .option('--meta <key=value>', 'metadata stored with the file (repeatable)', parseMeta)
    .addOption(quiet())
    .action(async (path: string, key: string, o: PutOptions, cmd: Command) => {
      const g = globals(cmd);
      setExit(
        await run(
          cmd,
          `put ${JSON.stringify(key)}`,
          g,
          (redis) => putCommand(redis, g, path, key, o),
          (redis, err) => reportInterruptedPut(redis, g, key, err),
        ),
      );
    });

  const waitForCreate = (): Option =>
    new Option('--wait-for-create <ms>', 'wait this long for a file that does not exist yet (or 30s, 5m, …)')
      .argParser((t) => parseDuration(t, 'ms', 0))
      .default(0);
  const decompress = (): Option => new Option('-d, --decompress', 'gunzip a file stored gzipped (no-op otherwise)');

  program
    .command('get')
    .summary('write a stored file to a local file or stdout')
    .description(
      'Write the file stored at a key to a local file, or to standard output with - (the default). While the file is ' +
        'still being written, get follows it to its end. A local file appears only once complete (it is written under ' +
        'a temporary name, then renamed); a directory receives it under the last segment of the key.',
    )
    .argument('<key>', 'name of the file in Redis')
    .argument('[path|-]', 'where to write it, - for standard output', '-')
    .addOption(decompress().conflicts(['start', 'end']))
    .option('--no-follow', 'read what is stored now, even if the writer is not done')
    .addOption(new Option('--start <offset>', 'first byte to read (suffixes k, m, g)').argParser(bytesArg(0)))
    .addOption(new Option('--end <offset>', 'last byte to read, inclusive (suffixes k, m, g)').argParser(bytesArg(0)))
    .addOption(waitForCreate())
    .addOption(quiet())
    .action(async (key: string, path: string, o: ReadOptions, cmd: Command) => {
      if (o.start !== undefined && o.end !== undefined && o.end < o.start) {
        cmd.error(`error: --end (${o.end}) is less than --start (${o.start}); --end is the last byte, inclusive`);
      }
      setExit(await run(cmd, `get ${JSON.stringify(key)}`, globals(cmd), (redis) => getCommand(redis, globals(cmd), key, path, o)));
    });

  program
    .command('cat')
    .summary('print stored files, following one being written')
    .description(
      'Write the files stored at the keys to standard output, one after the other. Like tail -f, cat follows a file ' +
        'that is still being written, and ends when its writer completes it.',
    )
    .argument('<key...>', 'names of the files in Redis')
    .addOption(decompress())
    .addOption(waitForCreate())
    .addOption(quiet())
    .action(async (keys: string[], o: ReadOptions, cmd: Command) => {
      setExit(await run(cmd, `cat ${JSON.stringify(keys[0])}`, globals(cmd), (redis) => catCommand(redis, globals(cmd), keys, o)));
    });

  program
    .command('stat')
    .summary('describe a stored file')
    .description('Describe the file stored at a key: state, size, chunks, encoding, metadata, checksum, times, expiry.')
    .argument('<key>', 'name of the file in Redis')
    .option('--json', 'print one JSON object (dates in ISO 8601, absent values null)')
    .action(async (key: string, o: { json?: boolean }, cmd: Command) => {
      setExit(await run(cmd, `stat ${JSON.stringify(key)}`, globals(cmd), (redis) => statCommand(redis, globals(cmd), key, o)));
    });

  program
    .command('ls')
    .summary('list stored files')
    .description(
      'List the files whose keys match a Redis glob pattern (* ? [abc], \\ escapes), sorted by key: state, size, ' +
        'content encoding, last update (local time) and key. It uses SCAN, so it never blocks Redis.',
    )
    .argument('[pattern]', 'Redis glob on the keys (quote it in the shell)', '*')
    .option('--json', 'one JSON object per line, as stat --json prints, unsorted')
    .action(async (pattern: string, o: { json?: boolean }, cmd: Command) => {
      setExit(await run(cmd, `ls ${JSON.stringify(pattern)}`, globals(cmd), (redis) => lsCommand(redis, globals(cmd), pattern, o)));
    });

  program
    .command('rm')
    .summary('remove stored files')
    .description(
      'Remove the files stored at the keys, each in one atomic step. Readers following one fail; a writer still writing ' +
        'one stops, its file aborted.',
    )
    .argument('<key...>', 'names of the files in Redis')
    .option('-f, --force', 'do not fail for keys that hold no file')
    .action(async (keys: string[], o: { force?: boolean }, cmd: Command) => {
      setExit(await run(cmd, `rm ${JSON.stringify(keys[0])}`, globals(cmd), (redis) => rmCommand(redis, globals(cmd), keys, o)));
    });

  program
    .command('expire')
    .summary('set or remove the expiry of a stored file')
    .description('Set the time to live of the file stored at a key, or remove it with "none".')
    .argument('<key>', 'name of the file in Redis')
    .argument('<seconds|none>', 'seconds from now (or 30m, 12h, 7d, …), or none to keep the file', (t: string) =>
      t.toLowerCase() === 'none' ? null : parseDuration(t, 's', 1),
    )
    .action(async (key: string, seconds: number | null, _o: unknown, cmd: Command) => {
      setExit(await run(cmd, `expire ${JSON.stringify(key)}`, globals(cmd), (redis) => expireCommand(redis, globals(cmd), key, seconds)));
    });

  program
    .command('mv')
    .summary('rename a stored file')
    .description('Rename a stored file, atomically. A file still being written cannot be renamed.')
    .argument('<from>', 'current name')
    .argument('<to>', 'new name')
    .option('-f, --overwrite', 'replace a complete or aborted file stored at the new name')
    .action(async (from: string, to: string, o: { overwrite?: boolean }, cmd: Command) => {
      setExit(await run(cmd, `mv ${JSON.stringify(from)}`, globals(cmd), (redis) => mvCommand(redis, globals(cmd), from, to, o)));
    });

  program.addHelpText(
    'after',
    `
Examples:
  redis-file put access.log.gz logs/2026-11-30.gz   # a .gz is stored as is
  tar cz src | redis-file put - backups/src.tgz     # standard input
  redis-file put --gzip --ttl 7d big.csv tmp/big.csv
  redis-file get logs/2026-11-30.gz copy.gz
  redis-file get -d logs/2026-11-30.gz | wc -l      # gunzip on the way out
  redis-file cat live/build.log                     # follow it while written
  redis-file ls 'logs/*'
  redis-file stat logs/2026-11-30.gz
  redis-file rm tmp/a tmp/b

Connection: --url, else REDIS_URL, else ${DEFAULT_URL}, e.g.
  REDIS_URL=rediss://user:secret@redis.example.com:6380/0 redis-file ls
Progress bar: on standard error when it is a terminal (off with --quiet).
Exit codes: 0 success, 1 failure (one line on standard error),
  2 usage error, 130 interrupted (Ctrl-C; an upload is left aborted).`,
  );

  // A usage error names the command's usage and where to read more.
  for (const cmd of program.commands) cmd.showHelpAfterError(usageHint(cmd));
  program.showHelpAfterError('Run "redis-file --help" for the commands.');
  return program;
}

async function main(): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with code 0; everything else commander rejects is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    report(err, 'redis-file');
    return EXIT.failure;
  }
  return exitCode;
}

process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now and the process ends by itself. Should anything (a bug) keep
    // it alive, this unref'd timer ends it without holding it open otherwise.
    setTimeout(() => {
      if (DEBUG) process.stderr.write(`redis-file: still running after the end (a bug), held by: ${process.getActiveResourcesInfo().join(', ')}\n`);
      process.exit(code);
    }, LINGER_MS).unref();
  },
  (err: unknown) => {
    report(err, 'redis-file');
    process.exit(EXIT.failure);
  },
);
