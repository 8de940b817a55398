/**
 * `redis-file receive`: a channel's files, in order, each written to a directory (--out) or piped
 * to a shell command (--exec), and acknowledged only once that is done.
 * @internal
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { type FileHandle, open, rename as renameLocal, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, type ReceivedFile, RedisFileError, receiveFiles, stat } from '../index.js';
import type { Client, GlobalOptions } from './connection.js';
import { ConnectionLost, Failure, isExpected, LocalFileError, UsageError } from './errors.js';
import { formatBytes, showKey } from './format.js';
import { makeDirectories, partName } from './local.js';
import { warn } from './output.js';
import { counter } from './progress.js';
import { checked } from './runtime.js';
import { cleanUpOnSignal, closed, interrupt, interrupted, orStopped, stopReason } from './stop.js';

/** How long a command run by `receive --exec` has to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 2000;

const quote = (text: string): string => JSON.stringify(text);

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
export async function receiveCommand(
  redis: Client,
  g: GlobalOptions,
  channel: string,
  o: ReceiveOptions,
): Promise<void> {
  cleanUpOnSignal();
  if (o.out !== undefined) {
    try {
      await makeDirectories(o.out);
    } catch (err) {
      throw new LocalFileError(`cannot write to ${o.out}: ${(err as Error).message}`, { cause: err });
    }
  }
  const files = checked(() =>
    receiveFiles(redis, channel, {
      prefix: g.prefix,
      consumer: o.consumer,
      decompress: o.decompress ?? false,
      signal: interrupt.signal,
      // Announced, and gone before this receiver got to it: acknowledged, and said.
      onSkip: (file) => warn(`skipped ${quote(file.name)}: it is gone from Redis (removed, or expired)`),
    }),
  );
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
        const bytes =
          o.out !== undefined
            ? await receiveInto(file, name, o.out, o.consumer)
            : await receiveThrough(file, name, o.exec!, channel, o.consumer);
        written = { name, bytes };
      } catch (err) {
        const stop = stopReason();
        // Redis gone: the line names the file, which stays unacknowledged.
        if (stop instanceof ConnectionLost) throw failure(file, stop);
        if (stop) throw stop;
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
    // A stop is the story, unless the line tells it already, naming the file.
    if (interrupt.signal.aborted && !(err instanceof Failure && err.cause === interrupt.signal.reason))
      throw interrupt.signal.reason;
    throw err;
  }
}

/** The name to write the file under: with --decompress, a gzipped file loses its ".gz". */
function outputName(file: ReceivedFile, decompress: boolean): string {
  // Only what was stored gzipped is gunzipped (a .gz sent as is is recognised as gzip).
  const stem = file.name.slice(0, -3);
  // "..gz" and "...gz" keep their names: "." and ".." name no file.
  return decompress && file.contentEncoding === 'gzip' && /.\.gz$/i.test(file.name) && stem !== '.' && stem !== '..'
    ? stem
    : file.name;
}

/** Why a failed file can be skipped (it will never be there to receive), or `undefined`. */
async function skippable(
  redis: Client,
  g: GlobalOptions,
  file: ReceivedFile,
  err: unknown,
): Promise<string | undefined> {
  if (!(err instanceof RedisFileError && (err.code === ErrorCodes.ABORTED || err.code === ErrorCodes.NOT_FOUND)))
    return undefined;
  try {
    const s = await stat(redis, file.key, { prefix: g.prefix });
    return s.state === 'aborted' ? `its sender aborted it (${err.code})` : undefined;
  } catch (e) {
    return e instanceof RedisFileError && e.code === ErrorCodes.NOT_FOUND
      ? `it is gone: removed, or expired (${err.code})`
      : undefined;
  }
}

/** One line naming the file, why it failed, and what happens next. */
function failure(file: ReceivedFile, err: unknown): unknown {
  if (err instanceof UsageError || !isExpected(err)) return err;
  const e = err as Error;
  const why = e instanceof RedisFileError ? `${e.message} (${e.code})` : e.message;
  return new Failure(
    `receive ${quote(file.name)}: ${why}; it is not acknowledged: the next receive with this --consumer gets it again`,
    { cause: err },
  );
}

/** A plain file name, which --out can write into its directory and nowhere else. */
function isPlainName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !/[/\0]/.test(name) &&
    !(process.platform === 'win32' && /[\\:]/.test(name))
  );
}

/**
 * --out: write the file to a temporary name, flush it to disk and rename it, then the caller
 * acknowledges: the file is never acknowledged (and so maybe deleted from Redis) before it is
 * safely on disk, and a file in the directory is always whole. The temporary name is the same for
 * a restart of this consumer, which overwrites the one a killed run left behind.
 */
async function receiveInto(file: ReceivedFile, name: string, dir: string, consumer: string): Promise<number> {
  if (!isPlainName(name))
    throw new Failure('its name is not a plain file name, so --out cannot write it (--exec can take it)');
  const target = join(dir, name);
  const tag = createHash('sha256').update(consumer).digest('hex').slice(0, 8);
  const temp = join(dir, partName(name, tag));
  const local = (err: unknown): LocalFileError =>
    new LocalFileError(`cannot write ${target}: ${(err as Error).message}`, { cause: err });
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
async function receiveThrough(
  file: ReceivedFile,
  name: string,
  command: string,
  channel: string,
  consumer: string,
): Promise<number> {
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
    r.code === 0
      ? undefined
      : new Failure(r.signal ? `the command was killed by ${r.signal}` : `the command exited with code ${r.code}`);
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
