/**
 * A file's chunk stream: the ids of its entries (record and piece numbers), the fields of the
 * header, pieces, end and abort records, and their strict decoding.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';
import { parseCrc, parseCrcBytes } from '../crc.js';
import { parseDecimal, parseNumber } from './conventions.js';

/**
 * Stream entry ids `<n>-<s>`: the millisecond part is the record number (the chunk a piece belongs
 * to, or the number of the end or abort record), the sequence part the piece number, from 2 (Redis
 * forbids `0-0`, so the header needs `0-1` and pieces start above it). `XRANGE key 5 5` in redis-cli
 * shows every piece of chunk 5, and a retried XADD of a piece is refused by Redis instead of being
 * stored twice.
 * @internal
 */
export const HEADER_ID = '0-1';
/** @internal The sequence number of a chunk's first piece, and of end and abort records. */
export const FIRST_PIECE = 2;
/** @internal The largest sequence number Redis accepts: `<n>-MAX_SEQ` is the last id of record n. */
export const MAX_SEQ = '18446744073709551615';

/** @internal The id of piece `s` of chunk `n` (and of the end or abort record `n` with s = 2). */
export function pieceId(n: number, s: number = FIRST_PIECE): string {
  return `${n}-${s}`;
}

/**
 * @internal The largest id below piece `s` of record `n`: what a stream's last id is set to when
 * everything from that piece on is deleted, so that the piece can be written again.
 */
export function idBefore(n: number, s: number): string {
  if (s > FIRST_PIECE) return `${n}-${s - 1}`;
  return n > 0 ? `${n - 1}-${MAX_SEQ}` : HEADER_ID;
}

/** @internal The record and piece number of an id, or undefined for an id not of that form. */
export function parseId(id: string): { n: number; s: number } | undefined {
  const dash = id.indexOf('-');
  if (dash <= 0) return undefined;
  const n = parseDecimal(id, 0, dash);
  const s = parseDecimal(id, dash + 1, id.length);
  return n === undefined || s === undefined ? undefined : { n, s };
}

/** @internal Field names of the entries in a chunk stream, in the order they are stored. */
export const Field = Object.freeze({
  /** Header: format version, generation, chunk size, content encoding. */
  version: 'rfs',
  gen: 'gen',
  chunkSize: 'chunkSize',
  encoding: 'encoding',
  /** Piece: its bytes and their CRC-32. */
  data: 'd',
  crc: 'c',
  /** End record: total size, chunk count, CRC-32 of the whole file. */
  size: 'end',
  chunks: 'chunks',
  crc32: 'crc32',
  /** Abort record: the reason. */
  abort: 'abort',
} as const);

/** @internal A decoded chunk-stream entry, or the damage found in it. */
export type Entry =
  | {
      readonly kind: 'header';
      readonly id: string;
      readonly version: string;
      readonly gen: string;
      readonly chunkSize: number;
      readonly encoding: string;
    }
  | {
      readonly kind: 'piece';
      readonly id: string;
      readonly n: number;
      readonly s: number;
      readonly data: Buffer;
      readonly crc: number;
    }
  | {
      readonly kind: 'end';
      readonly id: string;
      readonly n: number;
      readonly s: number;
      readonly size: number;
      readonly chunks: number;
      readonly crc32: number;
    }
  | { readonly kind: 'abort'; readonly id: string; readonly n: number; readonly s: number; readonly reason: string }
  | { readonly kind: 'bad'; readonly id: string; readonly n: number; readonly s: number; readonly detail: string };

function fieldsAre(fields: Buffer[], names: readonly string[]): boolean {
  if (fields.length !== names.length * 2) return false;
  for (let i = 0; i < names.length; i++) if (!nameIs(fields[i * 2], names[i]!)) return false;
  return true;
}

/** Whether a field name in a reply is `name` (ASCII), compared without making a string of it. */
function nameIs(field: Buffer | undefined, name: string): boolean {
  if (field === undefined || field.length !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (field[i] !== name.charCodeAt(i)) return false;
  return true;
}

const HEADER_FIELDS = [Field.version, Field.gen, Field.chunkSize, Field.encoding] as const;
const PIECE_FIELDS = [Field.data, Field.crc] as const;
const END_FIELDS = [Field.size, Field.chunks, Field.crc32] as const;
const ABORT_FIELDS = [Field.abort] as const;

/**
 * @internal Decode one entry as returned by `XRANGE`/`XREAD` in buffer mode, strictly: exact field
 * lists, numbers and CRCs of the stored form. Damage decodes to `kind: 'bad'`; a header of another
 * version decodes as a header (the reader refuses its version).
 */
export function decodeEntry(rawId: Buffer | string, fields: Buffer[]): Entry {
  const id = typeof rawId === 'string' ? rawId : rawId.toString('latin1');
  const parsed = parseId(id);
  const n = parsed?.n ?? -1;
  const s = parsed?.s ?? -1;
  const bad = (detail: string): Entry => ({ kind: 'bad', id, n, s, detail });
  if (parsed === undefined) return bad(`entry ${id} has an id this format never writes`);
  if (id === HEADER_ID) {
    if (!fieldsAre(fields, HEADER_FIELDS))
      return bad('the header entry does not hold exactly rfs, gen, chunkSize, encoding');
    const chunkSize = parseNumber(fields[5]!.toString('latin1'));
    if (chunkSize === undefined || chunkSize < 1) return bad("the header's chunkSize is not a positive number");
    return {
      kind: 'header',
      id,
      version: fields[1]!.toString('latin1'),
      gen: fields[3]!.toString('latin1'),
      chunkSize,
      encoding: fields[7]!.toString('latin1'),
    };
  }
  if (s < FIRST_PIECE) return bad(`entry ${id} has an id this format never writes`);
  const first = fields[0];
  if (nameIs(first, Field.data)) {
    if (!fieldsAre(fields, PIECE_FIELDS)) return bad(`piece ${id} does not hold exactly d and c`);
    const crc = parseCrcBytes(fields[3]!);
    if (crc === undefined) return bad(`piece ${id} has a CRC-32 that is not 8 lowercase hex digits`);
    if (fields[1]!.length === 0) return bad(`piece ${id} holds no bytes`);
    return { kind: 'piece', id, n, s, data: fields[1]!, crc };
  }
  if (nameIs(first, Field.size)) {
    if (!fieldsAre(fields, END_FIELDS)) return bad(`the end record ${id} does not hold exactly end, chunks, crc32`);
    const size = parseNumber(fields[1]!.toString('latin1'));
    const chunks = parseNumber(fields[3]!.toString('latin1'));
    const crc32 = parseCrc(fields[5]!.toString('latin1'));
    if (size === undefined || chunks === undefined)
      return bad(`the end record ${id} holds a size or chunk count that is not a number`);
    if (crc32 === undefined) return bad(`the end record ${id} has a CRC-32 that is not 8 lowercase hex digits`);
    return { kind: 'end', id, n, s, size, chunks, crc32 };
  }
  if (nameIs(first, Field.abort)) {
    if (!fieldsAre(fields, ABORT_FIELDS)) return bad(`the abort record ${id} does not hold exactly abort`);
    return { kind: 'abort', id, n, s, reason: fields[1]!.toString('utf8') };
  }
  return bad(`entry ${id} is neither a piece nor an end or abort record`);
}

/** @internal The gzip magic bytes, used to detect gzip input that was not declared. */
export function looksGzipped(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}
