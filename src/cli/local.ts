/**
 * `redis-file`: reading the local files that put and send store.
 * @internal
 * @module
 */

import type { ReadStream } from 'node:fs';
import { type FileHandle, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Bytes per read, as the library reads a path given to `sendFiles` (its `FILE_READ_BYTES`, where
 * the measurement is): fs's default of 64 KiB stores a file at about half the speed.
 */
const READ_BYTES = 1024 * 1024;

/** A stream of the file behind `handle`, from its start, in reads of {@link READ_BYTES}. */
export function readLocal(handle: FileHandle): ReadStream {
  return handle.createReadStream({ highWaterMark: READ_BYTES });
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
