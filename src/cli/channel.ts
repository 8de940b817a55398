/**
 * `redis-file`: the commands of a channel's sender, send, close and rm-channel: many files to many
 * receivers (see docs/distribution.md); receive.ts holds the receiver.
 * @internal
 * @module
 */

import { constants } from 'node:fs';
import { access, type FileHandle, open, stat as statLocal } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type AnnouncedFile, closeChannel, type MemoryWait, removeChannel, sendFiles } from '../index.js';
import type { Client, GlobalOptions } from './connection.js';
import { describe, Failure, Interrupted, isExpected, LocalFileError } from './errors.js';
import { formatBytes } from './format.js';
import { openFifo, readLocal } from './local.js';
import { warn } from './output.js';
import { counter, ProgressBar, wantBar } from './progress.js';
import { checked } from './runtime.js';
import { cleanUpOnSignal, interrupt, orStopped, settled, stopReason } from './stop.js';

const quote = (text: string): string => JSON.stringify(text);

/** How long the upload waits for Redis memory before `send` says so, and how often it says it again. */
const MEMORY_WAIT_REPORT_MS = 5_000;
const MEMORY_WAIT_REPEAT_MS = 60_000;

/**
 * What `send` says of an upload held back by `--max-redis-memory` for long (a limit below what
 * Redis already uses, or receivers that do not consume, hold it for ever): a line once a wait has
 * lasted {@link MEMORY_WAIT_REPORT_MS}, then at most every {@link MEMORY_WAIT_REPEAT_MS}. Short
 * waits, as receivers that follow the upload cause all along, say nothing.
 */
function memoryWaitReporter(): (file: AnnouncedFile, wait: MemoryWait) => void {
  let said = -Infinity;
  return (file, wait) => {
    const now = Date.now();
    if (wait.waitedMs < MEMORY_WAIT_REPORT_MS || now - said < MEMORY_WAIT_REPEAT_MS) return;
    said = now;
    warn(
      `send ${quote(file.name)}: held back for ${Math.round(wait.waitedMs / 1000)} s by --max-redis-memory ` +
        `${formatBytes(wait.limit)}: Redis uses ${formatBytes(wait.usedMemory)}, and the next chunk needs ` +
        `${formatBytes(wait.needed)} below the limit; the upload goes on once memory is freed`,
    );
  };
}

export interface SendOptions {
  gzip?: boolean;
  chunkSize?: number;
  ttl?: number;
  waitReplicas?: number;
  consumers?: number | string[];
  maxRedisMemory?: number;
  close?: boolean;
  quiet?: boolean;
}

interface LocalFile {
  path: string;
  name: string;
  /** Known for a regular file. */
  size: number | undefined;
  /** A regular file that starts with gzip's magic bytes: sent as is, even with --gzip. */
  gzipped: boolean;
  /** A FIFO (named pipe): read through the event loop (see openFifo). */
  fifo: boolean;
}

/**
 * The size of the regular file behind `handle`, or `undefined` when it says 0 bytes and has some (as
 * the files of /proc do: it is then read to its end, its size not announced).
 */
async function sizeToSend(handle: FileHandle): Promise<number | undefined> {
  const { size } = await handle.stat();
  if (size > 0) return size;
  const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, 0);
  return bytesRead === 0 ? 0 : undefined;
}

/** Check that a local file can be read, before anything is sent. */
async function inspectLocal(path: string): Promise<LocalFile> {
  let handle: FileHandle | undefined;
  try {
    const st = await statLocal(path);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    const file: LocalFile = { path, name: basename(path), size: undefined, gzipped: false, fifo: st.isFIFO() };
    if (!st.isFile()) {
      // A FIFO or a device (`<(…)`): opening one for reading may wait for its writer, so not now.
      await access(path, constants.R_OK);
      return file;
    }
    handle = await open(path, 'r');
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return { ...file, size: st.size, gzipped: bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b };
  } catch (err) {
    throw new LocalFileError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Send files in order, one sendFiles call each: each is announced as its upload starts, and each
 * gets its own gzip decision and progress bar.
 */
export async function sendCommand(
  redis: Client,
  g: GlobalOptions,
  channel: string,
  paths: string[],
  o: SendOptions,
): Promise<void> {
  cleanUpOnSignal();
  // Every local file first: a missing one must fail before anything is sent.
  const files: LocalFile[] = [];
  for (const path of paths) files.push(await inspectLocal(path));
  const options = {
    prefix: g.prefix,
    chunkSize: o.chunkSize,
    ttl: o.ttl,
    waitReplicas: o.waitReplicas,
    consumers: o.consumers,
    maxRedisMemory: o.maxRedisMemory,
    signal: interrupt.signal,
    onMemoryWait: memoryWaitReporter(),
  };
  const sentBefore = (i: number): string =>
    `${i} of ${files.length} file${files.length === 1 ? '' : 's'} sent before it`;
  for (const [i, file] of files.entries()) {
    const stop = stopReason();
    if (stop instanceof Interrupted) {
      warn(`send ${quote(channel)} interrupted by ${stop.signal}: ${i} of ${files.length} files sent, the others not`);
      throw stop;
    }
    if (stop) {
      const sent = `${i} of ${files.length} files sent, the others not`;
      throw new Failure(`${describe(stop, `send ${quote(channel)}`)}; ${sent}`, { cause: stop });
    }
    let handle: FileHandle | undefined;
    let fifo: Readable | undefined;
    try {
      if (file.fifo) fifo = await openFifo(file.path);
      else handle = await open(file.path, 'r');
    } catch (err) {
      throw new LocalFileError(`cannot read ${file.path}: ${(err as Error).message}`, { cause: err });
    }
    let size: number | undefined;
    try {
      // A regular file is sent at the size it has now, read to that size and no further (a log that
      // grows meanwhile is sent as it was, at the size announced).
      size = file.size === undefined || handle === undefined ? undefined : await sizeToSend(handle);
    } catch (err) {
      await handle?.close().catch(() => {});
      throw new LocalFileError(`cannot read ${file.path}: ${(err as Error).message}`, { cause: err });
    }
    const bar = wantBar(o.quiet, false) ? new ProgressBar(file.name, size) : undefined;
    // Counts the bytes read from the file: with --gzip the stored bytes are fewer.
    let bytes = 0;
    const source = counter((n) => {
      bytes += n;
      bar?.update(bytes);
    });
    // A read error reaches sendFiles through `source`; a destroyed `source` closes the file.
    if (size === 0) {
      await handle?.close().catch(() => {});
      source.end();
    } else pipeline(fifo ?? readLocal(handle!, size), source).catch(() => {});
    let sending: Promise<unknown> | undefined;
    try {
      const compress = (o.gzip ?? false) && !file.gzipped;
      // A file that is gzipped already is declared as such, and stored as it is.
      const upload = {
        name: file.name,
        stream: source,
        size,
        ...(file.gzipped ? { contentEncoding: 'gzip' } : {}),
      };
      sending = checked(() => sendFiles(redis, channel, [upload], { ...options, compress }));
      sending.catch(() => {});
      await orStopped(sending);
      bar?.update(bytes, bytes);
      bar?.stop(true);
    } catch (err) {
      source.destroy();
      const stopped = stopReason();
      if (stopped instanceof Interrupted) {
        // The signal aborts the upload: sendFiles settles once the file is marked aborted, which
        // must happen before the command exits (a while at most).
        if (sending) await settled(sending);
        warn(
          `send ${quote(channel)} interrupted by ${stopped.signal} while sending ${quote(file.name)}: it is left aborted (receivers skip it); ${sentBefore(i)}`,
        );
        throw stopped;
      }
      // Redis gone: that is why, whatever the upload failed with on the way.
      const why = stopped ?? err;
      // Still one line, which names the file and says what was sent before it.
      if (isExpected(why)) {
        throw new Failure(`${describe(why as Error, `send ${quote(file.name)}`)}; ${sentBefore(i)}`, { cause: why });
      }
      throw why;
    } finally {
      bar?.stop(false);
    }
  }
  if (o.close) await closeCommand(redis, g, channel);
}

export async function closeCommand(redis: Client, g: GlobalOptions, channel: string): Promise<void> {
  await checked(() => closeChannel(redis, channel, { prefix: g.prefix }));
}

export async function rmChannelCommand(
  redis: Client,
  g: GlobalOptions,
  channel: string,
  o: { force?: boolean },
): Promise<void> {
  if (!(await checked(() => removeChannel(redis, channel, { prefix: g.prefix }))) && !o.force) {
    throw new Failure(`channel ${quote(channel)}: there is no channel of this name`);
  }
}
