/**
 * `redis-file`: the transfer commands, put, get and cat.
 * @internal
 * @module
 */

import { randomBytes } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { type FileHandle, open, rename as renameLocal, rm, stat as statLocal } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRedisReadStream, createRedisWriteStream, ErrorCodes, type Progress, RedisFileError, type RedisWriteStream, stat } from '../index.js';
import { checked, cleanUpOnSignal, closed, orStopped, type GlobalOptions, interrupt, type Interrupted, LocalFileError, UsageError, warn, type Client } from './runtime.js';
import { ProgressBar, wantBar } from './progress.js';

/** How long `put` holds back the end of its input, for a signal that comes with it (see putCommand). */
const END_GRACE_MS = 50;

export interface PutOptions {
  gzip?: boolean;
  chunkSize?: number;
  ttl?: number;
  waitReplicas?: number;
  overwrite?: boolean;
  contentType?: string;
  meta?: Record<string, string>;
  quiet?: boolean;
}

export async function putCommand(redis: Client, g: GlobalOptions, source: string, key: string, o: PutOptions): Promise<void> {
  cleanUpOnSignal();
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
        waitReplicas: o.waitReplicas,
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
    await orStopped(pipeline(input, counter, writer));
    bar?.update(bytes, bytes);
    bar?.stop(true);
  } catch (err) {
    // Whatever failed, the writer marks the file aborted in its destroy: wait for that (a while).
    if (!writer.destroyed) writer.destroy(err as Error);
    input.destroy();
    await closed(writer);
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  } finally {
    bar?.stop(false);
    await handle?.close().catch(() => {});
  }
}

/** Say what an interrupted upload left behind: normally an aborted file; complete if the end record won the race. */
export async function reportInterruptedPut(redis: Client, g: GlobalOptions, key: string, err: Interrupted): Promise<void> {
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

export interface ReadOptions {
  decompress?: boolean;
  follow?: boolean;
  start?: number;
  end?: number;
  waitForCreate?: number;
  quiet?: boolean;
}

/** Read one file into `dest` (stdout when `undefined`), with a progress bar when wanted. */
async function readInto(redis: Client, g: GlobalOptions, key: string, o: ReadOptions, dest: Writable | undefined): Promise<void> {
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
    await orStopped(dest === undefined ? pipeline(reader, process.stdout, { end: false }) : pipeline(reader, dest));
    bar?.stop(true);
  } catch (err) {
    if (!reader.destroyed) reader.destroy(err as Error);
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  } finally {
    bar?.stop(false);
    await closed(reader);
  }
}

export async function getCommand(redis: Client, g: GlobalOptions, key: string, path: string, o: ReadOptions): Promise<void> {
  cleanUpOnSignal();
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

export async function catCommand(redis: Client, g: GlobalOptions, keys: string[], o: ReadOptions): Promise<void> {
  cleanUpOnSignal();
  for (const key of keys) await readInto(redis, g, key, { ...o, follow: true }, undefined);
}
