/**
 * `redis-file`: reading the local files that put and send store.
 * @internal
 * @module
 */

import { constants, open as openFd, type ReadStream } from 'node:fs';
import { type FileHandle, mkdir, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { dirname, resolve } from 'node:path';

/**
 * Bytes per read, as the library reads a path given to `sendFiles` (its `FILE_READ_BYTES`, where
 * the measurement is): fs's default of 64 KiB stores a file at about half the speed.
 */
const READ_BYTES = 1024 * 1024;

/**
 * A stream of the file behind `handle`, from its start, in reads of {@link READ_BYTES}: its first
 * `size` bytes when a size is given (at least 1), else to its end.
 */
export function readLocal(handle: FileHandle, size?: number): ReadStream {
  return handle.createReadStream({ highWaterMark: READ_BYTES, ...(size === undefined ? {} : { end: size - 1 }) });
}

/**
 * A stream of the FIFO (named pipe) at `path`, opened for reading, which waits for its writer as
 * `cat` does. It is read through the event loop, as standard input is, not with reads of Node's
 * thread pool: such a read, waiting for a writer that keeps the FIFO open and writes nothing, held
 * the process up after the command had failed and said why. Destroying the stream closes it.
 *
 * On Linux the FIFO is opened without blocking, so that the wait for its writer is the event
 * loop's too: a blocking open waits in the thread pool until a writer comes, and a command that
 * failed meanwhile (Redis gone) could not exit, not even at SIGTERM, for as long. Linux reports
 * neither bytes nor an end on such a FIFO until a writer has opened it (an end once the last
 * writer closes it), which is what a blocking open waits for. Elsewhere a FIFO opened without
 * blocking may read as ended before its writer comes, so it is opened as a file is.
 */
export async function openFifo(path: string): Promise<Socket> {
  const flags = process.platform === 'linux' ? constants.O_RDONLY | constants.O_NONBLOCK : 'r';
  const fd = await new Promise<number>((resolve, reject) =>
    openFd(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
  return new Socket({ fd, readable: true, writable: false });
}

/**
 * `mkdir -p`: makes each missing directory of `path` in turn, from the top. Not fs's `recursive`
 * option, which loops for ever (at full CPU) where mkdir fails with ENOENT under a directory that
 * exists, as in /proc and /sys.
 */
export async function makeDirectories(path: string): Promise<void> {
  const missing: string[] = [];
  let dir = resolve(path);
  while (!(await exists(dir))) {
    missing.push(dir);
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // An existing non-directory fails as mkdir fails on it (EEXIST).
  if (missing.length === 0 && !(await stat(dir)).isDirectory()) await mkdir(dir);
  for (const made of missing.reverse())
    await mkdir(made).catch((err: unknown) => {
      // Made meanwhile by someone else: fine if it is a directory (the next mkdir or the caller tells).
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
}

/** Whether something is at `path` (following symbolic links). */
async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The longest name most file systems take, in bytes (NAME_MAX on Linux, macOS and Windows). */
const NAME_MAX = 255;

/**
 * The hidden temporary name a file is written to before it is renamed to `name`: `.<name>.<tag>.part`,
 * with as much of `name` as keeps it within {@link NAME_MAX} bytes (cut between characters), so that
 * a name that fits its directory gets a temporary name that fits too.
 */
export function partName(name: string, tag: string): string {
  const room = NAME_MAX - Buffer.byteLength(`..${tag}.part`);
  let used = 0;
  let end = 0;
  for (const char of name) {
    const size = Buffer.byteLength(char);
    if (used + size > room) break;
    used += size;
    end += char.length;
  }
  return `.${name.slice(0, end)}.${tag}.part`;
}
