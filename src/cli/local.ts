/**
 * `redis-file`: reading the local files that put and send store.
 * @internal
 * @module
 */

import type { ReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Bytes per read: with fs's default of 64 KiB, storing a file took about twice as long as with
 * 1 MiB reads (`benchmarks/file-reads.mjs`: 355 against 649 MiB/s for 256 MiB on loopback); 4 MiB
 * were no faster. The same as the library's own reads of a path given to `sendFiles`.
 */
const READ_BYTES = 1024 * 1024;

/** A stream of the file behind `handle`, from its start, in reads of {@link READ_BYTES}. */
export function readLocal(handle: FileHandle): ReadStream {
  return handle.createReadStream({ highWaterMark: READ_BYTES });
}
