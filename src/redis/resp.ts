/**
 * A command's RESP encoding written around one of its arguments, in place: the bytes of a chunk
 * sit in a buffer with room before and after them, and the command that stores them is encoded
 * into that room, so that the whole command is one slice of the buffer. A client that would
 * otherwise copy every argument into an encoding of its own (ioredis copies each command into a
 * new buffer) can write that slice to its socket as it is.
 * @internal
 * @module
 */

import { Buffer } from 'node:buffer';

/** An argument around the one encoded in place. */
export type PlainArg = string | number;

function bulk(arg: PlainArg): string {
  const text = String(arg);
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

/**
 * Encode the command `[...before, <the bytes of buffer[at, at + length)>, ...after]` around those
 * bytes, which stay where they are: the arguments before them are written just before `at`, the
 * ones after just after `at + length`. Returns the slice of `buffer` that holds the whole command,
 * or undefined when the room on either side is too small (the caller then sends the command as
 * usual). The bytes outside the returned slice are untouched.
 */
export function encodeAround(
  buffer: Buffer,
  at: number,
  length: number,
  before: readonly PlainArg[],
  after: readonly PlainArg[],
): Buffer | undefined {
  let head = `*${before.length + 1 + after.length}\r\n`;
  for (const arg of before) head += bulk(arg);
  head += `$${length}\r\n`;
  let tail = '\r\n';
  for (const arg of after) tail += bulk(arg);
  const headBytes = Buffer.byteLength(head);
  const tailBytes = Buffer.byteLength(tail);
  const start = at - headBytes;
  const end = at + length + tailBytes;
  if (start < 0 || end > buffer.length) return undefined;
  buffer.write(head, start, headBytes, 'utf8');
  buffer.write(tail, at + length, tailBytes, 'utf8');
  return buffer.subarray(start, end);
}
