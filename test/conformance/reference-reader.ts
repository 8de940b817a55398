/**
 * A minimal reader of storage format version 2, written from docs/format.md alone (and the README for
 * byte ranges and trimmed chunks), to show that the specification is enough to read a file. It reads
 * a file given as the conformance vectors describe it: the metadata hash, the entries of the chunk
 * stream in id order, and the read options; it returns the bytes or the error code, with the bytes
 * delivered before the error.
 *
 * It checks everything a reader must reject, in the order a streaming reader meets it: the hash
 * first, then the header, then each entry, delivering a piece's bytes only once its CRC matched.
 */
import { crc32 } from 'node:zlib';

/** A field value as the vectors give it: UTF-8 text, or raw bytes in hex. */
export type FieldValue = string | { hex: string };

/** One entry of the chunk stream. */
export interface StreamEntry {
  id: string;
  fields: [string, FieldValue][];
}

export interface ReadRequest {
  start: number;
  /** Inclusive; `null` reads to the end of the file. */
  end: number | null;
  follow: boolean;
}

/** The bytes read, or the error code, the bytes delivered before it and why (for people, not asserted). */
export type ReadResult = { bytes: Buffer } | { error: string; delivered: Buffer; why: string };

const CORRUPT = 'ERR_REDIS_FILE_CORRUPT';
const FORMAT = 'ERR_REDIS_FILE_FORMAT';
const ABORTED = 'ERR_REDIS_FILE_ABORTED';
const NOT_FOUND = 'ERR_REDIS_FILE_NOT_FOUND';
const RANGE = 'ERR_REDIS_FILE_RANGE';
/**
 * Not an error of the package: a follower of a file being written would wait here (for a
 * `repaired` event or for more entries), which a reader of a fixed list of entries cannot do.
 */
export const WOULD_WAIT = 'WOULD_WAIT';

class Stop extends Error {
  constructor(
    readonly code: string,
    why: string,
  ) {
    super(why);
  }
}

const fail = (code: string, why: string): never => {
  throw new Stop(code, why);
};

// Conventions: ASCII decimal, no sign, spaces or leading zeros, at most 2^53 − 1.
const NUMBER = /^(0|[1-9][0-9]*)$/;
const CRC = /^[0-9a-f]{8}$/;
const HEX16 = /^[0-9a-f]{16}$/;
// "token": read as an HTTP token (RFC 9110, 1*tchar), which `gzip` and `identity` are.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isNumber(text: string): boolean {
  return NUMBER.test(text) && Number(text) <= Number.MAX_SAFE_INTEGER;
}

function number(text: string | undefined, what: string): number {
  if (text === undefined || !isNumber(text)) return fail(CORRUPT, `${what} is not a number: ${text}`);
  return Number(text);
}

const crcHex = (bytes: Buffer): string => crc32(bytes).toString(16).padStart(8, '0');

function bytesOf(value: FieldValue): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.hex, 'hex');
}

function textOf(value: FieldValue): string {
  return typeof value === 'string' ? value : Buffer.from(value.hex, 'hex').toString('utf8');
}

/** The values of `entry` when its field names are exactly `names`, in order; else undefined. */
function exactFields(entry: StreamEntry, names: string[]): FieldValue[] | undefined {
  if (entry.fields.length !== names.length) return undefined;
  if (entry.fields.some(([name], i) => name !== names[i])) return undefined;
  return entry.fields.map(([, value]) => value);
}

function parseId(id: string): { n: number; s: number } {
  const [n, s] = id.split('-');
  return { n: number(n, `id ${id}`), s: number(s, `id ${id}`) };
}

interface Meta {
  state: 'writing' | 'complete' | 'aborted';
  gen: string;
  chunkSize: number;
  encoding: string;
  size: string;
  chunks: string;
  crc32: string | undefined;
  hb: number;
  hbi: number;
  trimmed: number;
  lost: boolean;
}

/** The metadata hash: version first (ERR_REDIS_FILE_FORMAT), then every field's presence and form. */
function readMeta(hash: Record<string, string>): Meta {
  if (hash.v !== '2') fail(FORMAT, `hash version ${hash.v}`);
  const required = ['gen', 'state', 'chunkSize', 'encoding', 'size', 'chunks', 'created', 'updated', 'writer'];
  for (const name of [...required, 'hb', 'hbi', 'trim']) {
    if (hash[name] === undefined) fail(CORRUPT, `hash field ${name} missing`);
  }
  const field = (name: string): string => hash[name] as string;
  if (!HEX16.test(field('gen'))) fail(CORRUPT, 'hash gen');
  const state = field('state');
  if (state !== 'writing' && state !== 'complete' && state !== 'aborted') return fail(CORRUPT, `state ${state}`);
  const chunkSize = number(field('chunkSize'), 'hash chunkSize');
  if (chunkSize < 1) fail(CORRUPT, 'hash chunkSize 0');
  if (!TOKEN.test(field('encoding'))) fail(CORRUPT, 'hash encoding');
  const size = number(field('size'), 'hash size');
  number(field('chunks'), 'hash chunks');
  if (hash.crc32 !== undefined && !CRC.test(hash.crc32)) fail(CORRUPT, 'hash crc32');
  if (size > 0 && hash.crc32 === undefined) fail(CORRUPT, 'hash crc32 missing');
  for (const name of ['created', 'updated', 'hb', 'hbi']) number(field(name), `hash ${name}`);
  if (!HEX16.test(field('writer'))) fail(CORRUPT, 'hash writer');
  if (field('trim') !== '0' && field('trim') !== '1') fail(CORRUPT, 'hash trim');
  if (hash.metadata !== undefined && !isStringMap(hash.metadata)) fail(CORRUPT, 'hash metadata');
  if (hash.consumers !== undefined && !isConsumers(hash.consumers)) fail(CORRUPT, 'hash consumers');
  for (const name of ['acks', 'trimmed', 'dropped']) {
    if (hash[name] !== undefined) number(hash[name], `hash ${name}`);
  }
  for (const [name, value] of Object.entries(hash)) {
    if (name.startsWith('ack:')) number(value, `hash ${name}`);
    if (name.startsWith('pos:') && value !== 'done') number(value, `hash ${name}`);
  }
  if (hash.lost !== undefined && hash.lost !== '1') fail(CORRUPT, 'hash lost');
  return {
    state,
    gen: field('gen'),
    chunkSize,
    encoding: field('encoding'),
    size: field('size'),
    chunks: field('chunks'),
    crc32: hash.crc32,
    hb: Number(field('hb')),
    hbi: Number(field('hbi')),
    trimmed: hash.trimmed === undefined ? 0 : Number(hash.trimmed),
    lost: hash.lost === '1',
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isStringMap(text: string): boolean {
  const value = parseJson(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return Object.values(value).every((v) => typeof v === 'string');
}

function isConsumers(text: string): boolean {
  if (text === '') return true;
  if (isNumber(text)) return true;
  const value = parseJson(text);
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** The header `0-1`: version first (ERR_REDIS_FILE_FORMAT), then its exact fields and the hash's copy. */
function checkHeader(entry: StreamEntry, meta: Meta): void {
  const first = entry.fields[0];
  if (first && first[0] === 'rfs' && textOf(first[1]) !== '2') fail(FORMAT, `header version ${textOf(first[1])}`);
  const values = exactFields(entry, ['rfs', 'gen', 'chunkSize', 'encoding']);
  if (!values) {
    fail(CORRUPT, 'header fields');
    return;
  }
  const [, gen, chunkSize, encoding] = values.map(textOf) as [string, string, string, string];
  if (!HEX16.test(gen) || gen !== meta.gen) fail(CORRUPT, 'header gen');
  if (number(chunkSize, 'header chunkSize') !== meta.chunkSize) fail(CORRUPT, 'header chunkSize');
  if (!TOKEN.test(encoding) || encoding !== meta.encoding) fail(CORRUPT, 'header encoding');
}

/**
 * Read a file. `hash` is null when the key holds no hash; `stream` is empty when the chunk stream
 * does not exist. `now` (server ms) decides whether a follower's writer still holds its lease.
 */
export function referenceRead(
  hash: Record<string, string> | null,
  stream: StreamEntry[],
  request: ReadRequest,
  now: number,
): ReadResult {
  const delivered: Buffer[] = [];
  try {
    readInto(delivered, hash, stream, request, now);
    return { bytes: Buffer.concat(delivered) };
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    return { error: err.code, delivered: Buffer.concat(delivered), why: err.message };
  }
}

function readInto(
  out: Buffer[],
  hash: Record<string, string> | null,
  stream: StreamEntry[],
  request: ReadRequest,
  now: number,
): void {
  if (hash === null) {
    fail(NOT_FOUND, 'no hash');
    return;
  }
  const meta = readMeta(hash);
  // The hash is the authority on the state: an aborted file is not read.
  if (meta.state === 'aborted') fail(meta.lost ? CORRUPT : ABORTED, 'the hash says aborted');
  const { start, end } = request;
  const cs = meta.chunkSize;
  if (meta.state === 'complete') {
    const size = Number(meta.size);
    if (start > size) fail(RANGE, `start ${start} of ${size} bytes`);
  }
  const first = Math.floor(start / cs);
  if (first < meta.trimmed) fail(NOT_FOUND, `chunk ${first} was trimmed`);
  if (stream.length === 0) fail(CORRUPT, 'the chunk stream is gone');
  const header = stream[0] as StreamEntry;
  if (header.id === '0-1') checkHeader(header, meta);
  else if (meta.trimmed === 0) fail(CORRUPT, 'header missing');

  // Where the read starts: after the header, or at the first entry of chunk `first` (seeking).
  let i = stream.findIndex((e) => parseId(e.id).n >= first && e.id !== '0-1');
  if (i < 0) i = stream.length;
  let n = first;
  let s = 2;
  let filled = 0;
  let offset = first * cs;
  let whole = 0;
  // The whole-file CRC is checked by a read that took every piece from the first one.
  const fromStart = first === 0;

  const gap = (why: string): never => {
    // A follower of a file still being written waits while the writer's lease is live.
    const live = now - meta.hb <= 3 * meta.hbi && !meta.lost;
    if (request.follow && meta.state === 'writing' && live) return fail(WOULD_WAIT, why);
    return fail(CORRUPT, why);
  };

  for (; i < stream.length; i += 1) {
    const entry = stream[i] as StreamEntry;
    const { n: en, s: es } = parseId(entry.id);
    const kind = entry.fields[0]?.[0];
    const atPiece = en === n && es === s;
    const atRecord = filled === 0 ? en === n && es === 2 : en === n + 1 && es === 2;
    if (kind === 'd' && atPiece) {
      const values = exactFields(entry, ['d', 'c']);
      if (!values) fail(CORRUPT, `piece ${entry.id} fields`);
      const [d, c] = values as [FieldValue, FieldValue];
      const bytes = bytesOf(d);
      const crc = textOf(c);
      if (bytes.length === 0) fail(CORRUPT, `piece ${entry.id} is empty`);
      if (!CRC.test(crc)) fail(CORRUPT, `piece ${entry.id} crc form`);
      if (crcHex(bytes) !== crc) fail(CORRUPT, `piece ${entry.id} crc mismatch`);
      if (filled + bytes.length > cs) fail(CORRUPT, `piece ${entry.id} overfills chunk ${n}`);
      // Only now may any byte of the piece be delivered.
      const from = Math.max(start, offset) - offset;
      const to = (end === null ? offset + bytes.length : Math.min(end + 1, offset + bytes.length)) - offset;
      if (to > from) out.push(bytes.subarray(from, to));
      if (fromStart) whole = crc32(bytes, whole);
      offset += bytes.length;
      filled += bytes.length;
      s += 1;
      if (filled === cs) {
        n += 1;
        s = 2;
        filled = 0;
      }
      if (end !== null && offset > end) return;
      continue;
    }
    if (kind === 'end' && atRecord) {
      const values = exactFields(entry, ['end', 'chunks', 'crc32']);
      if (!values) fail(CORRUPT, 'end record fields');
      const [size, chunks, crc] = (values as FieldValue[]).map(textOf) as [string, string, string];
      const total = number(size, 'end size');
      const count = number(chunks, 'end chunks');
      if (!CRC.test(crc)) fail(CORRUPT, 'end crc32 form');
      if (total !== offset) fail(CORRUPT, `end size ${total}, read ${offset}`);
      if (count !== en) fail(CORRUPT, `end chunks ${count} at record ${en}`);
      if (count !== Math.ceil(total / cs)) fail(CORRUPT, 'end chunks against size');
      if (fromStart && crc !== whole.toString(16).padStart(8, '0')) fail(CORRUPT, 'whole-file crc32 mismatch');
      if (i + 1 < stream.length) fail(CORRUPT, 'an entry follows the end record');
      // Not listed among the rejections, but "no record silently wins": an end record under a hash
      // that says writing or aborted is a disagreement. (No vector relies on this.)
      if (meta.state !== 'complete') fail(CORRUPT, `end record in a file the hash says is ${meta.state}`);
      // An empty file's hash may lack crc32 (required once size > 0): read as the CRC of no bytes.
      if (meta.size !== size || meta.chunks !== chunks || (meta.crc32 ?? '00000000') !== crc) {
        fail(CORRUPT, 'the hash disagrees with the end record');
      }
      return;
    }
    if (kind === 'abort' && atRecord) {
      if (!exactFields(entry, ['abort'])) fail(CORRUPT, 'abort record fields');
      if (i + 1 < stream.length) fail(CORRUPT, 'an entry follows the abort record');
      if (meta.state !== 'aborted') fail(CORRUPT, `abort record in a file the hash says is ${meta.state}`);
      if (meta.lost) fail(CORRUPT, 'the writer lost acknowledged pieces');
      fail(ABORTED, 'abort record');
      return;
    }
    // Not an allowed entry. Past the next piece id `n-s` it can follow missing entries: a gap. (Read
    // to the letter, "larger than every allowed id" would make a piece missing inside a chunk, `n-(s+1)`
    // below the allowed `(n+1)-2`, damage even for a follower; without follow both are damage.)
    const pastNext = en > n || (en === n && es > s);
    const recordAfterShortChunk = filled > 0 && en === n + 1 && es === 2;
    if (pastNext && !recordAfterShortChunk) gap(`entry ${entry.id} after a gap`);
    fail(CORRUPT, `entry ${entry.id} (${kind}) is not allowed here`);
  }
  // The stored entries ran out before an end or abort record.
  if (meta.state === 'complete') fail(CORRUPT, 'complete hash without an end record');
  if (meta.state === 'aborted') fail(meta.lost ? CORRUPT : ABORTED, 'the hash says aborted');
  if (request.follow) fail(WOULD_WAIT, 'the writer may add more');
}
