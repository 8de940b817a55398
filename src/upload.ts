/**
 * Piping into a write stream of the package, for the functions that upload on the caller's behalf
 * ({@link sendFiles}, a rename across cluster slots).
 * @module
 */

import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RedisWriteStream } from './write-stream.js';

/**
 * `pipeline(source, ...through, writer)` that settles only once the writer has closed. On a
 * failure elsewhere in the line, `pipeline` rejects as soon as it destroys the writer, while the
 * writer's `_destroy` is still marking the file aborted: a caller that looks at the file once this
 * rejects must find it aborted, not still being written. The writer closes within its abort bound.
 */
export async function upload(source: Readable, through: readonly Duplex[], writer: RedisWriteStream): Promise<void> {
  try {
    await pipeline([source, ...through, writer]);
  } catch (err) {
    // Not events.once: it rejects at the 'error' the writer emits just before 'close'.
    if (!writer.closed) await new Promise((resolve) => writer.once('close', resolve));
    throw err;
  }
}
