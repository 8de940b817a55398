/**
 * Splitting bytes into lines, for the "process each log line" pattern.
 * @module
 */

import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { ErrorCodes, RedisFileError } from './errors.js';
import { checkKnown, checkObject, invalidType, outOfRange } from './options.js';

/** Options of {@link lines}. */
export interface LinesOptions {
  /**
   * Longest line accepted, in UTF-16 code units, not counting the line ending. A longer line fails
   * the stream with code `ERR_REDIS_FILE_LINE_TOO_LONG`: memory stays bounded whatever the input.
   * @default 1048576
   */
  maxLineLength?: number;
}

/** The error a {@link lines} stream fails with on a line longer than `maxLineLength`: a {@link RedisFileError}. */
export interface LineTooLongError extends RedisFileError {
  readonly code: 'ERR_REDIS_FILE_LINE_TOO_LONG';
}

/**
 * A Transform from bytes (UTF-8) to lines: one string per line, without its `\n` or `\r\n`. A last
 * line without a line ending is emitted too, without a `\r` it ends with (the input cut inside a
 * `\r\n`); an empty input yields no line.
 *
 * split2 was the obvious candidate; it bounds only the unfinished line it keeps between chunks, so
 * a long line that arrives whole inside one chunk passes. Here every line is measured.
 *
 * @throws TypeError / RangeError for bad arguments, at the call
 * @example
 * ```ts
 * await pipeline(createRedisReadStream(redis, 'app.log', { decompress: true }), lines(), async (text) => {
 *   for await (const line of text) handle(line);
 * });
 * ```
 */
export function lines(options?: LinesOptions): Transform {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['maxLineLength']);
  const max = o.maxLineLength === undefined ? 1024 * 1024 : o.maxLineLength;
  if (typeof max !== 'number') throw invalidType('maxLineLength', 'a positive integer', max);
  if (!Number.isInteger(max) || max < 1) throw outOfRange('maxLineLength', 'a positive integer', max);
  const decoder = new StringDecoder('utf8');
  // The unfinished line, in the pieces it arrived in: joined once, when its line ending comes, so
  // that a long line arriving in small pieces costs time in proportion to its length.
  let rest: string[] = [];
  let restLength = 0;
  const tooLong = (length: number): LineTooLongError =>
    new RedisFileError(
      ErrorCodes.LINE_TOO_LONG,
      `A line is longer than maxLineLength (${max}): at least ${length} characters without a line ending`,
    ) as LineTooLongError;
  /** A line without its `\n`: without the `\r` before it too, and measured without it. */
  const line = (stream: Transform, text: string): Error | undefined => {
    const end = text.endsWith('\r') ? text.length - 1 : text.length;
    if (end > max) return tooLong(end);
    stream.push(end === text.length ? text : text.slice(0, end));
    return undefined;
  };
  const emit = (stream: Transform, text: string, final: boolean): Error | undefined => {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const head = text.slice(start, nl);
      const err = line(stream, start === 0 && restLength > 0 ? rest.join('') + head : head);
      if (err) return err;
      if (start === 0) {
        rest = [];
        restLength = 0;
      }
      start = nl + 1;
    }
    if (start < text.length) {
      rest.push(start === 0 ? text : text.slice(start));
      restLength += text.length - start;
    }
    if (final) {
      const last = rest.join('');
      rest = [];
      restLength = 0;
      return last.length > 0 ? line(stream, last) : undefined;
    }
    // A trailing \r may be the first half of a \r\n split across chunks: it is not counted yet.
    const pending =
      text.endsWith('\r') || (start === text.length && rest.at(-1)?.endsWith('\r')) ? restLength - 1 : restLength;
    return pending > max ? tooLong(pending) : undefined;
  };
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(emit(this, decoder.write(chunk), false));
    },
    flush(callback: TransformCallback) {
      callback(emit(this, decoder.end(), true));
    },
  });
}
