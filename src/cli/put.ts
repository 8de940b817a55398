/**
 * `redis-file put`: one file or standard input, several files under a key prefix, or a directory
 * (-r); input already gzipped is stored as it is, declared as gzip.
 * @internal
 * @module
 */

import { type Dirent, fstatSync, type Stats } from 'node:fs';
import { type FileHandle, lstat as lstatLocal, open, readdir, stat as statLocal } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRedisWriteStream, ErrorCodes, RedisFileError, type RedisWriteStream, stat } from '../index.js';
import type { Client, GlobalOptions } from './connection.js';
import { EXIT, type Interrupted, LocalFileError, UsageError } from './errors.js';
import { openFifo, readLocal } from './local.js';
import { report, warn } from './output.js';
import { ProgressBar, wantBar } from './progress.js';
import { checked } from './runtime.js';
import { cleanUpOnSignal, closed, interrupt, orStopped, stopReason } from './stop.js';

const quote = (text: string): string => JSON.stringify(text);
const RECURSIVE = '-r/--recursive stores the files of a directory';

/** How long `put` holds back the end of a piped input, for a signal that comes with it (see putFile). */
const END_GRACE_MS = 50;

export interface PutOptions {
  gzip?: boolean;
  chunkSize?: number;
  ttl?: number;
  waitReplicas?: number;
  overwrite?: boolean;
  contentType?: string;
  meta?: Record<string, string>;
  recursive?: boolean;
  quiet?: boolean;
}

/** Where a put stands, for the line that says what a signal left behind. */
export interface PutState {
  /** The key being stored. */
  key: string;
  /** With several files: how many there are, and how many were stored before this one. */
  count: number;
  stored: number;
}

/** One file to store, and where. */
interface Upload {
  source: string;
  key: string;
}

/**
 * What is wrong with the arguments themselves, if anything: told as a usage error before the
 * command connects or reads a file.
 */
export function putUsage(paths: string[], key: string, recursive: boolean): string | undefined {
  if (recursive)
    return paths.length !== 1 || paths[0] === '-' ? '--recursive takes one directory and a key prefix' : undefined;
  if (paths.length === 1 && !key.endsWith('/')) return undefined;
  if (!key.endsWith('/'))
    return `several files are stored under a key prefix ending in /, as in logs/; got ${quote(key)}`;
  if (paths.includes('-')) return 'standard input has no name to store it under a key prefix: give it a key of its own';
  const seen = new Map<string, string>();
  for (const source of paths) {
    const k = `${key}${basename(source)}`;
    const other = seen.get(k);
    if (other !== undefined) return `${other} and ${source} would both be stored at ${quote(k)}`;
    seen.set(k, source);
  }
  return undefined;
}

/**
 * What put stores where. One source and a key: the file at that key, or, when the key ends in `/`,
 * under it by its base name (as cp does with a directory). Several sources: each under the key
 * prefix (which must end in `/`) by its base name. --recursive: the one directory's files, each
 * under the key prefix (a `/` added if missing) by its path relative to the directory.
 */
async function plan(paths: string[], key: string, recursive: boolean): Promise<Upload[]> {
  const wrong = putUsage(paths, key, recursive);
  if (wrong !== undefined) throw new UsageError(wrong);
  if (recursive) {
    const dir = paths[0]!;
    const st = await statLocal(dir).catch((err: Error) => {
      throw new LocalFileError(`cannot read ${dir}: ${err.message}`, { cause: err });
    });
    if (!st.isDirectory()) throw new LocalFileError(`cannot read ${dir}: not a directory (${RECURSIVE})`);
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    return (await walk(dir)).map((name) => ({ source: join(dir, ...name.split('/')), key: `${prefix}${name}` }));
  }
  if (paths.length === 1 && !key.endsWith('/')) return [{ source: paths[0]!, key }];
  return paths.map((source) => ({ source, key: `${key}${basename(source)}` }));
}

/**
 * The regular files under a directory, as paths relative to it with `/` between segments, sorted.
 * A link to a file counts as the file; anything else that is not a directory or a regular file (a
 * link to a directory, a FIFO, a socket) is skipped, with a line.
 */
async function walk(root: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const dir = rel === '' ? root : join(root, ...rel.split('/'));
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw new LocalFileError(`cannot read ${dir}: ${(err as Error).message}`, { cause: err });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const path = join(dir, entry.name);
      // A name that is not UTF-8 comes with U+FFFD in place of its bytes, and names no file then.
      if (entry.name.includes('\uFFFD') && !(await lstatLocal(path).catch(() => undefined))) {
        throw new LocalFileError(`cannot store ${path}: its name is not UTF-8, and a key is text (rename it)`);
      }
      const link = entry.isSymbolicLink();
      if (entry.isDirectory()) await visit(name);
      else if (entry.isFile() || (link && (await statLocal(path).catch(() => undefined))?.isFile())) found.push(name);
      else warn(`skipped ${path}: not a regular file${link ? ' (a link to a directory, or to nothing)' : ''}`);
    }
  };
  await visit('');
  return found;
}

/**
 * put: one file, or several one after the other. With several, every local file is checked first
 * (one that cannot be read fails the command before anything is stored); a file that then fails
 * is reported in a line and the others are still stored (exit 1 at the end).
 */
export async function putCommand(
  redis: Client,
  g: GlobalOptions,
  paths: string[],
  key: string,
  o: PutOptions,
  state: PutState,
): Promise<number> {
  cleanUpOnSignal();
  const uploads = await plan(paths, key, o.recursive ?? false);
  state.count = uploads.length;
  if (uploads.length === 1 && !o.recursive && paths.length === 1) {
    state.key = uploads[0]!.key;
    await putFile(redis, g, uploads[0]!.source, uploads[0]!.key, o);
    return EXIT.ok;
  }
  for (const { source } of uploads) {
    const st = await statLocal(source).catch((err: Error) => {
      throw new LocalFileError(`cannot read ${source}: ${err.message}`, { cause: err });
    });
    if (st.isDirectory()) throw new LocalFileError(`cannot read ${source}: is a directory (${RECURSIVE})`);
  }
  let failed = 0;
  for (const [i, upload] of uploads.entries()) {
    Object.assign(state, { key: upload.key, stored: i - failed });
    try {
      await putFile(redis, g, upload.source, upload.key, o);
    } catch (err) {
      if (stopReason() || err instanceof UsageError) throw err;
      report(err, `put ${quote(upload.key)}`);
      failed++;
    }
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

/** Store one local file, or standard input (`-`), at a key. */
async function putFile(redis: Client, g: GlobalOptions, source: string, key: string, o: PutOptions): Promise<void> {
  // The local side first: a missing file must fail before anything is stored.
  let input: Readable;
  let size: number | undefined;
  let handle: FileHandle | undefined;
  if (source === '-') {
    let st: Stats | undefined;
    try {
      st = fstatSync(0);
    } catch {
      // not a regular file: the size is unknown
    }
    // Node reads a directory given as standard input as if it were empty.
    if (st?.isDirectory()) throw new LocalFileError('cannot read standard input: it is a directory');
    if (st?.isFile()) size = st.size;
    input = process.stdin;
  } else {
    let fifo: Readable | undefined;
    try {
      // Looked at before it is opened: a FIFO is opened for reading through the event loop.
      const st = await statLocal(source);
      if (st.isDirectory()) throw Object.assign(new Error(`is a directory (${RECURSIVE})`), { code: 'EISDIR' });
      if (st.isFIFO()) fifo = await openFifo(source);
      else {
        handle = await open(source, 'r');
        if (st.isFile()) size = st.size;
      }
    } catch (err) {
      await handle?.close();
      throw new LocalFileError(`cannot read ${source}: ${(err as Error).message}`, { cause: err });
    }
    input = fifo ?? readLocal(handle!);
  }
  // Input that is gzipped already is stored as it is, declared as gzip (so that `get --decompress`
  // and readers with `decompress` decode it), and never compressed again.
  let gzipped: boolean;
  // A regular file is read at its start; anything else (stdin, a FIFO) only as a stream.
  if (handle && size !== undefined) {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    gzipped = bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } else {
    ({ stream: input, gzipped } = await sniffGzip(input));
  }
  // The input is given up on a failure: standard input too, whose pipe (its writer still writing)
  // would otherwise hold the process up after its last line (sniffGzip hands on another stream).
  const stopInput = (): void => {
    input.destroy();
    if (source === '-') process.stdin.destroy();
  };
  let writer: RedisWriteStream;
  try {
    writer = checked(() =>
      createRedisWriteStream(redis, key, {
        prefix: g.prefix,
        compress: (o.gzip ?? false) && !gzipped,
        ...(gzipped ? { contentEncoding: 'gzip' } : {}),
        chunkSize: o.chunkSize,
        ttl: o.ttl,
        waitReplicas: o.waitReplicas,
        overwrite: o.overwrite ?? false,
        contentType: o.contentType,
        metadata: o.meta,
        signal: interrupt.signal,
      }),
    );
  } catch (err) {
    stopInput();
    throw err;
  }
  // No bar over what someone is typing into `put -`.
  const bar =
    wantBar(o.quiet, false) && !(source === '-' && process.stdin.isTTY) ? new ProgressBar(key, size) : undefined;
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
    // otherwise commit the cut input as a complete file. A regular file ends where it ends, so
    // its end goes on at once (a put of many small files would wait for each).
    flush(callback) {
      const end = () => callback(interrupt.signal.aborted ? (interrupt.signal.reason as Error) : null);
      if (size !== undefined) end();
      else setTimeout(end, END_GRACE_MS);
    },
  });
  try {
    await orStopped(pipeline(input, counter, writer));
    bar?.update(bytes, bytes);
    bar?.stop(true);
  } catch (err) {
    // Whatever failed, the writer marks the file aborted in its destroy: wait for that (a while).
    if (!writer.destroyed) writer.destroy(err as Error);
    stopInput();
    await closed(writer);
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  } finally {
    bar?.stop(false);
    // A read still pending on a FIFO holds the close up until its writer writes or goes: a stopped
    // command does not wait for that.
    const closing = handle?.close().catch(() => {});
    if (!interrupt.signal.aborted) await closing;
  }
}

/** Say what an interrupted upload left behind: normally an aborted file; complete if the end record won the race. */
export async function reportInterruptedPut(
  redis: Client,
  g: GlobalOptions,
  put: PutState,
  err: Interrupted,
): Promise<void> {
  const key = put.key;
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
  const others = put.count > 1 ? `; ${put.stored} of ${put.count} files stored before it, the others not` : '';
  warn(`File ${JSON.stringify(key)}: put interrupted by ${err.signal}: ${what}${others}`);
}

/**
 * A source that may start with gzip's magic bytes: said from its first two bytes, which are read
 * and handed on with the rest, so that nothing is lost (a pipe cannot be read twice).
 */
async function sniffGzip(input: Readable): Promise<{ stream: Readable; gzipped: boolean }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < 2) {
    const next = await it.next();
    if (next.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(next.value)]);
  }
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
  }
  return {
    stream: Readable.from(all(), { objectMode: false }),
    gzipped: head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b,
  };
}
