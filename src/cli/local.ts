/**
 * `redis-file`: reading the local files that put and send store.
 * @internal
 * @module
 */

import type { ReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Bytes per read, as the library reads a path given to `sendFiles` (its `FILE_READ_BYTES`, where
 * the measurement is): fs's default of 64 KiB stores a file at about half the speed.
 */
const READ_BYTES = 1024 * 1024;

/** A stream of the file behind `handle`, from its start, in reads of {@link READ_BYTES}. */
export function readLocal(handle: FileHandle): ReadStream {
  return handle.createReadStream({ highWaterMark: READ_BYTES });
}
