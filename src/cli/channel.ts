/**
 * `redis-file`: the channel commands, send, receive, close and rm-channel: many files to many
 * receivers (see docs/distribution.md).
 * @internal
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, type FileHandle, mkdir, open, rename as renameLocal, rm, stat as statLocal } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { closeChannel, ErrorCodes, type ReceivedFile, receiveFiles, RedisFileError, removeChannel, sendFiles, stat } from '../index.js';
import type { Client, GlobalOptions } from './connection.js';
import { describe, Failure, Interrupted, isExpected, LocalFileError, UsageError } from './errors.js';
import { formatBytes, showKey } from './format.js';
import { warn } from './output.js';
import { ProgressBar, wantBar } from './progress.js';
import { checked } from './runtime.js';
import { cleanUpOnSignal, closed, interrupt, interrupted, orStopped, stopReason } from './stop.js';

/** How long a command run by `receive --exec` has to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 2000;

const quote = (text: string): string => JSON.stringify(text);

/** Counts the bytes that pass. */
function counter(count: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      count(chunk.length);
      callback(null, chunk);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// send

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
}

/** Check that a local file can be read, before anything is sent. */
async function inspectLocal(path: string): Promise<LocalFile> {
  let handle: FileHandle | undefined;
  try {
    const st = await statLocal(path);
    if (st.isDirectory()) throw Object.assign(new Error(`${path}: is a directory`), { code: 'EISDIR' });
    const file: LocalFile = { path, name: basename(path), size: undefined, gzipped: false };
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
export async function sendCommand(redis: Client, g: GlobalOptions, channel: string, paths: string[], o: SendOptions): Promise<void> {
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
  };
  const sentBefore = (i: number): string => `${i} of ${files.length} file${files.length === 1 ? '' : 's'} sent before it`;
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
    let handle: FileHandle;
    try {
      handle = await open(file.path, 'r');
    } catch (err) {
      throw new LocalFileError(`cannot read ${file.path}: ${(err as Error).message}`, { cause: err });
    }
    const bar = wantBar(o.quiet, false) ? new ProgressBar(file.name, file.size) : undefined;
    // Counts the bytes read from the file: with --gzip the stored bytes are fewer.
    let bytes = 0;
    const source = counter((n) => {
      bytes += n;
      bar?.update(bytes);
    });
    // A read error reaches sendFiles through `source`; a destroyed `source` closes the file.
    pipeline(handle.createReadStream(), source).catch(() => {});
    try {
      const compress = (o.gzip ?? false) && !file.gzipped;
      // A file that is gzipped already is declared as such, and stored as it is.
      const upload = { name: file.name, stream: source, size: file.size, ...(file.gzipped ? { contentEncoding: 'gzip' } : {}) };
      await orStopped(checked(() => sendFiles(redis, channel, [upload], { ...options, compress })));
      bar?.update(bytes, bytes);
      bar?.stop(true);
    } catch (err) {
      source.destroy();
      const stopped = stopReason();
      if (stopped instanceof Interrupted) {
        warn(`send ${quote(channel)} interrupted by ${stopped.signal} while sending ${quote(file.name)}: it is left aborted (receivers skip it); ${sentBefore(i)}`);
        throw stopped;
      }
      // Redis gone: that is why, whatever the upload failed with on the way.
      const why = stopped ?? err;
      // Still one line, which says what was sent.
      if (i > 0 && isExpected(why)) {
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

export async function rmChannelCommand(redis: Client, g: GlobalOptions, channel: string, o: { force?: boolean }): Promise<void> {
  if (!(await checked(() => removeChannel(redis, channel, { prefix: g.prefix }))) && !o.force) {
    throw new Failure(`channel ${quote(channel)}: there is no channel of this name`);
  }
}

// ---------------------------------------------------------------------------------------------
// receive

export interface ReceiveOptions {
  consumer: string;
  out?: string;
  exec?: string;
  decompress?: boolean;
  quiet?: boolean;
}

/**
 * Receive until the channel is closed. Each file is acknowledged only once it is processed
 * (renamed into place, or the command exited 0): a failure or a signal leaves it unacknowledged,
 * and the next run with the same --consumer starts again with it.
 */
export async function receiveCommand(redis: Client, g: GlobalOptions, channel: string, o: ReceiveOptions): Promise<void> {
  cleanUpOnSignal();
  if (o.out !== undefined) {
    try {
      await mkdir(o.out, { recursive: true });
    } catch (err) {
      throw new LocalFileError(`cannot write to ${o.out}: ${(err as Error).message}`, { cause: err });
    }
  }
  const files = checked(() => receiveFiles(redis, channel, { prefix: g.prefix, consumer: o.consumer, decompress: o.decompress ?? false, signal: interrupt.signal }));
  // Iterated by hand: a wait for the next file that does not end with the signal (its connection
  // gone) must not hold up the command, and neither may ending the iterator.
  const iterator = files[Symbol.asyncIterator]();
  try {
    for (let next = await orStopped(iterator.next()); !next.done; next = await orStopped(iterator.next())) {
      const file = next.value;
      if (file.offset > 0) {
        // Restarted in the middle of this file after Redis trimmed its first bytes: the rest alone
        // is not the file, and no run with this --consumer will ever get more of it.
        file.stream.destroy();
        warn(
          `skipped ${quote(file.name)}: this receiver stopped in the middle of it, and Redis no longer holds its first ` +
            `${file.offset} bytes (trimmed under the sender's --max-redis-memory once every receiver had consumed them)`,
        );
        await file.ack();
        continue;
      }
      let written: { name: string; bytes: number };
      try {
        const name = outputName(file, o.decompress ?? false);
        const bytes = o.out !== undefined ? await receiveInto(file, name, o.out, o.consumer) : await receiveThrough(file, name, o.exec!, channel, o.consumer);
        written = { name, bytes };
      } catch (err) {
        if (interrupt.signal.aborted) throw interrupt.signal.reason;
        const why = await skippable(redis, g, file, err);
        if (why === undefined) throw failure(file, err);
        // Retrying would fail the same way for ever: say so, and move past it.
        warn(`skipped ${quote(file.name)}: ${why}`);
        await file.ack();
        continue;
      }
      if (interrupt.signal.aborted) throw interrupt.signal.reason;
      await file.ack();
      if (!o.quiet) {
        const where = o.out !== undefined ? ` -> ${join(o.out, written.name)}` : '';
        process.stderr.write(`received ${showKey(file.name)} (${formatBytes(written.bytes)})${where}\n`);
      }
    }
  } catch (err) {
    // End the iteration (and its connections) as for-await would; a stopped command does not wait.
    const ending = Promise.resolve(iterator.return?.()).catch(() => {});
    if (!interrupt.signal.aborted) await ending;
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  }
}

/** The name to write the file under: with --decompress, a gzipped file loses its ".gz". */
function outputName(file: ReceivedFile, decompress: boolean): string {
  // Only what was stored gzipped is gunzipped (a .gz sent as is is recognised as gzip).
  return decompress && file.contentEncoding === 'gzip' && /.\.gz$/i.test(file.name) ? file.name.slice(0, -3) : file.name;
}

/** Why a failed file can be skipped (it will never be there to receive), or `undefined`. */
async function skippable(redis: Client, g: GlobalOptions, file: ReceivedFile, err: unknown): Promise<string | undefined> {
  if (!(err instanceof RedisFileError && (err.code === ErrorCodes.ABORTED || err.code === ErrorCodes.NOT_FOUND))) return undefined;
  try {
    const s = await stat(redis, file.key, { prefix: g.prefix });
    return s.state === 'aborted' ? `its sender aborted it (${err.code})` : undefined;
  } catch (e) {
    return e instanceof RedisFileError && e.code === ErrorCodes.NOT_FOUND ? `it is gone: removed, or expired (${err.code})` : undefined;
  }
}

/** One line naming the file, why it failed, and what happens next. */
function failure(file: ReceivedFile, err: unknown): unknown {
  if (err instanceof UsageError || !isExpected(err)) return err;
  const e = err as Error;
  const why = e instanceof RedisFileError ? `${e.message} (${e.code})` : e.message;
  return new Failure(`receive ${quote(file.name)}: ${why}; it is not acknowledged: the next receive with this --consumer gets it again`, { cause: err });
}

/** A plain file name, which --out can write into its directory and nowhere else. */
function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\0]/.test(name) && !(process.platform === 'win32' && /[\\:]/.test(name));
}

/**
 * --out: write the file to a temporary name, flush it to disk and rename it, then the caller
 * acknowledges: the file is never acknowledged (and so maybe deleted from Redis) before it is
 * safely on disk, and a file in the directory is always whole. The temporary name is the same for
 * a restart of this consumer, which overwrites the one a killed run left behind.
 */
async function receiveInto(file: ReceivedFile, name: string, dir: string, consumer: string): Promise<number> {
  if (!isPlainName(name)) throw new Failure('its name is not a plain file name, so --out cannot write it (--exec can take it)');
  const target = join(dir, name);
  const tag = createHash('sha256').update(consumer).digest('hex').slice(0, 8);
  const temp = join(dir, `.${name.slice(0, 100)}.${tag}.part`);
  const local = (err: unknown): LocalFileError => new LocalFileError(`cannot write ${target}: ${(err as Error).message}`, { cause: err });
  let handle: FileHandle;
  try {
    handle = await open(temp, 'w');
  } catch (err) {
    throw local(err);
  }
  // The stream closes the handle (a handle that a stream uses cannot be closed by anyone else).
  const output = handle.createWriteStream();
  let bytes = 0;
  try {
    await pipeline(
      file.stream,
      counter((n) => (bytes += n)),
      output,
    );
    // On the disk before it is acknowledged: fsync flushes the file, whichever descriptor asks.
    const written = await open(temp, 'r+');
    await written.sync().finally(() => written.close());
    await renameLocal(temp, target);
  } catch (err) {
    output.destroy();
    await closed(output);
    await rm(temp, { force: true });
    // Errors of the file system carry a syscall; the reader's are RedisFileErrors.
    throw typeof (err as NodeJS.ErrnoException).syscall === 'string' ? local(err) : err;
  }
  // The rename itself reaches the disk with the directory (not every platform can flush one).
  try {
    const d = await open(dir, 'r');
    await d.sync().finally(() => d.close());
  } catch {
    // best effort
  }
  return bytes;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * --exec: run the command with a shell, the file on its standard input. A command may stop
 * reading early: the rest of the file is still read (and dropped), so that it is acknowledged only
 * once it was whole and checked. A command that fails stops the reading at once.
 */
async function receiveThrough(file: ReceivedFile, name: string, command: string, channel: string, consumer: string): Promise<number> {
  // Its own process group, so that a signal reaches whatever the shell started too.
  const group = process.platform !== 'win32';
  const child = spawn(command, {
    shell: true,
    detached: group,
    stdio: ['pipe', 'inherit', 'inherit'],
    env: { ...process.env, RFS_NAME: name, RFS_KEY: file.key, RFS_CHANNEL: channel, RFS_CONSUMER: consumer },
  });
  const kill = (signal: NodeJS.Signals): void => {
    try {
      if (group && child.pid !== undefined) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  };
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', (err) => reject(new Failure(`the command could not be started: ${err.message}`)));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const outcome = (r: Exit): Failure | undefined =>
    r.code === 0 ? undefined : new Failure(r.signal ? `the command was killed by ${r.signal}` : `the command exited with code ${r.code}`);
  exited.then(
    (r) => {
      const f = outcome(r);
      if (f && !file.stream.destroyed) file.stream.destroy(f);
    },
    (err: Error) => {
      if (!file.stream.destroyed) file.stream.destroy(err);
    },
  );
  let bytes = 0;
  try {
    await pipeline(
      file.stream,
      counter((n) => (bytes += n)),
      commandInput(child, () => kill('SIGTERM')),
    );
    const r = await Promise.race([exited, interrupted]);
    const f = outcome(r);
    if (f) throw f;
    return bytes;
  } catch (err) {
    kill('SIGTERM');
    await stopped(exited, () => kill('SIGKILL'));
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  }
}

/** Wait (a little) for the command to exit; SIGKILL if it does not. */
async function stopped(exited: Promise<Exit>, killHard: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    exited.then(
      () => false,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), KILL_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (late) killHard();
}

/**
 * The command's standard input, as the end of a pipeline that never fails because of it: once the
 * command closes it (it exited, or stopped reading), what follows is dropped. A pipeline that
 * fails kills the command before its input ends, so that it never takes a cut file for a whole one.
 */
function commandInput(child: ChildProcess, kill: () => void): Writable {
  const stdin = child.stdin!;
  let gone = false;
  // EPIPE: the command does not read any more. Its exit code says whether that was a failure.
  stdin.on('error', () => (gone = true));
  stdin.on('close', () => (gone = true));
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (gone || stdin.write(chunk)) {
        callback();
        return;
      }
      const go = (): void => {
        stdin.off('drain', go);
        stdin.off('close', go);
        callback();
      };
      stdin.on('drain', go);
      stdin.on('close', go);
    },
    final(callback) {
      if (!gone) stdin.end();
      callback();
    },
    destroy(err, callback) {
      // After a clean end, stdin still holds what the command has not read yet: leave it be.
      if (err) {
        kill();
        stdin.destroy();
      }
      callback(err);
    },
  });
}
