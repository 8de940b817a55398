/**
 * The order of a chunk stream's entries, checked as a reader meets them (docs/format.md, "What may
 * follow what"): which id may come next, a piece's size and CRC-32 before any of its bytes go out,
 * the end record against what was read. Pure: no I/O, so that every rule is testable on its own.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';
import { crc32, crc32Combine, formatCrc } from './crc.js';
import { aborted, badFormat, corrupt } from './errors.js';
import { type Entry, FIRST_PIECE, FORMAT_VERSION, HEADER_ID, idBefore, pieceId } from './format.js';

/**
 * How many chunk starts a reader remembers the CRC at: how far back a writer that resumes a file
 * may cut it under a follower that read past the cut, and still have the follower check that the
 * bytes written again are the ones it delivered (1 GiB at the default chunk size).
 */
const HISTORY = 4096;

/** @internal What an entry means for the reader. */
export type Step =
  | { readonly kind: 'header' }
  /** A checked piece: `bytes` is the part of it inside the range read (possibly empty). */
  | { readonly kind: 'bytes'; readonly bytes: Buffer; readonly pastEnd: boolean }
  | { readonly kind: 'end'; readonly size: number; readonly chunks: number; readonly crc32: string }
  | { readonly kind: 'abort'; readonly reason: string }
  /** Entries are missing before this one: `expected` is the id that should have come. */
  | { readonly kind: 'gap'; readonly expected: string };

/** @internal The layout a reader expects, from the metadata hash. */
export interface Layout {
  readonly gen: string;
  readonly chunkSize: number;
  readonly encoding: string;
}

function compareIds(a: { n: number; s: number }, b: { n: number; s: number }): number {
  return a.n !== b.n ? a.n - b.n : a.s - b.s;
}

/** @internal */
export class EntrySequence {
  readonly #key: string;
  readonly #layout: Layout;
  readonly #start: number;
  readonly #end: number;
  readonly #checksum: boolean;
  /** The chunk being read, the piece number expected next, and its bytes read so far. */
  #n: number;
  #s = FIRST_PIECE;
  #filled = 0;
  /** File offset of the next byte. */
  #pos: number;
  /** CRC-32 of the file so far, when the read started at its first byte. */
  #crc: number | undefined;
  #needHeader: boolean;
  #lastId: string;
  /** CRC-32 of the bytes read since the read's first chunk; and at the start of the latest chunks. */
  #runCrc = 0;
  readonly #historyChunk = new Float64Array(HISTORY).fill(-1);
  readonly #historyCrc = new Uint32Array(HISTORY);
  /**
   * After a rewind: bytes about to be read again that were delivered already (not delivered
   * twice), the CRC-32 they must have, and the CRC-32 of what was read again of them so far.
   */
  #skip = 0;
  #skipExpected = 0;
  #skipCrc = 0;

  /**
   * @param firstChunk the chunk the read starts at
   * @param withHeader whether the header comes first (a read from chunk 0 of an untrimmed file)
   */
  constructor(
    key: string,
    layout: Layout,
    opts: { firstChunk: number; withHeader: boolean; start: number; end: number; checksum: boolean },
  ) {
    this.#key = key;
    this.#layout = layout;
    this.#n = opts.firstChunk;
    this.#pos = opts.firstChunk * layout.chunkSize;
    this.#start = opts.start;
    this.#end = opts.end;
    this.#checksum = opts.checksum;
    this.#crc = opts.firstChunk === 0 && opts.checksum ? 0 : undefined;
    this.#needHeader = opts.withHeader;
    this.#lastId = opts.firstChunk === 0 ? '0-0' : idBefore(opts.firstChunk, FIRST_PIECE);
    this.#remember(opts.firstChunk);
  }

  #remember(chunk: number): void {
    this.#historyChunk[chunk % HISTORY] = chunk;
    this.#historyCrc[chunk % HISTORY] = this.#runCrc;
  }

  /**
   * The writer was replaced by one that resumed the file from chunk `cut`: everything from there on
   * is written again. Read again from there; bytes delivered already are not delivered twice, but
   * checked (by CRC-32) against what is written again. Returns false when nothing was read past
   * the cut, so nothing changes.
   */
  rewind(cut: number): boolean {
    const { chunkSize } = this.#layout;
    const cutAt = cut * chunkSize;
    if (cutAt >= this.#pos || this.#needHeader) return false;
    if (this.#historyChunk[cut % HISTORY] !== cut || this.#skip > 0) {
      throw aborted(
        this.#key,
        `its writer was replaced by one that resumed it from chunk ${cut}, before what this reader can check again`,
      );
    }
    const crcAtCut = this.#historyCrc[cut % HISTORY]!;
    const length = this.#pos - cutAt;
    this.#skip = length;
    // The CRC of the bytes past the cut, from the CRCs of the read up to the cut and up to here.
    this.#skipExpected = (this.#runCrc ^ crc32Combine(crcAtCut, 0, length)) >>> 0;
    this.#skipCrc = 0;
    this.#runCrc = crcAtCut;
    if (this.#crc !== undefined) this.#crc = crcAtCut;
    this.#n = cut;
    this.#s = FIRST_PIECE;
    this.#filled = 0;
    this.#pos = cutAt;
    this.#lastId = idBefore(cut, FIRST_PIECE);
    return true;
  }

  /** The id of the last entry accepted: where the next read continues, exclusively. */
  get lastId(): string {
    return this.#lastId;
  }

  /** File offset of the next byte. */
  get position(): number {
    return this.#pos;
  }

  /** The chunk being read, and whether it is partly read (so a restart must begin at its start). */
  get chunk(): number {
    return this.#n;
  }

  /** The id that should come next (the smallest one allowed). */
  get expected(): string {
    return this.#needHeader ? HEADER_ID : pieceId(this.#n, this.#s);
  }

  /** Check one entry, in stream order, and say what it means. Damage throws a coded error. */
  accept(entry: Entry): Step {
    const key = this.#key;
    if (entry.kind === 'bad') throw corrupt(key, entry.detail);
    if (this.#needHeader) {
      if (entry.kind !== 'header')
        throw corrupt(key, `the header entry ${HEADER_ID} is missing: the stream starts at ${entry.id}`);
      this.#checkHeader(entry);
      this.#needHeader = false;
      this.#lastId = entry.id;
      return { kind: 'header' };
    }
    if (entry.kind === 'header') throw corrupt(key, 'a second header entry');
    const at = { n: entry.n, s: entry.s };
    const piece = { n: this.#n, s: this.#s };
    // A record (end or abort) may come where chunk n begins, or after a partly filled chunk n.
    const record = { n: this.#filled > 0 ? this.#n + 1 : this.#n, s: FIRST_PIECE };
    const isPiece = compareIds(at, piece) === 0;
    const isRecord = compareIds(at, record) === 0;
    if (!isPiece && !isRecord) {
      if (compareIds(at, piece) > 0) return { kind: 'gap', expected: pieceId(piece.n, piece.s) };
      throw corrupt(
        key,
        `entry ${entry.id} came after ${this.#lastId}, where ${pieceId(piece.n, piece.s)} was expected`,
      );
    }
    // A piece where the record would come: the rest of a partly filled chunk is missing. While its
    // writer lives that is a gap it may yet repair (a piece re-sent after a dropped connection or a
    // failover lands after later ones); the reader decides as for any gap.
    if (entry.kind === 'piece' && !isPiece) return { kind: 'gap', expected: pieceId(piece.n, piece.s) };
    this.#lastId = entry.id;
    switch (entry.kind) {
      case 'piece': {
        const { data } = entry;
        const { chunkSize } = this.#layout;
        if (this.#filled + data.length > chunkSize) {
          throw corrupt(
            key,
            `piece ${entry.id} makes chunk ${this.#n} hold ${this.#filled + data.length} bytes; the chunk size is ${chunkSize}`,
          );
        }
        if (this.#checksum) {
          const crc = crc32(data);
          if (crc !== entry.crc) {
            throw corrupt(
              key,
              `checksum mismatch in piece ${entry.id}: it says crc32 ${formatCrc(entry.crc)}, its bytes give ${formatCrc(crc)}`,
            );
          }
          if (this.#crc !== undefined) this.#crc = crc32Combine(this.#crc, crc, data.length);
          this.#runCrc = crc32Combine(this.#runCrc, crc, data.length);
        }
        const pieceStart = this.#pos;
        this.#pos += data.length;
        this.#filled += data.length;
        if (this.#filled === chunkSize) {
          this.#n++;
          this.#s = FIRST_PIECE;
          this.#filled = 0;
          this.#remember(this.#n);
        } else {
          this.#s++;
        }
        // Bytes read again after a rewind were delivered already: checked, never delivered twice.
        const again = Math.min(this.#skip, data.length);
        if (again > 0) {
          this.#skip -= again;
          if (this.#checksum) {
            this.#skipCrc = crc32(data.subarray(0, again), this.#skipCrc);
            if (this.#skip === 0 && this.#skipCrc !== this.#skipExpected) {
              throw corrupt(
                key,
                `the writer that resumed it wrote other bytes than this reader had delivered before ${this.#pos - data.length + again}`,
              );
            }
          }
        }
        const from = Math.max(this.#start - pieceStart, again);
        const to = Math.min(this.#end + 1 - pieceStart, data.length);
        const bytes = from === 0 && to === data.length ? data : data.subarray(from, Math.max(from, to));
        return { kind: 'bytes', bytes, pastEnd: this.#pos > this.#end };
      }
      case 'end': {
        if (!isRecord)
          throw corrupt(key, `the end record ${entry.id} comes where piece ${pieceId(piece.n, piece.s)} was expected`);
        const { chunkSize } = this.#layout;
        if (
          entry.size !== this.#pos ||
          entry.chunks !== entry.n ||
          entry.chunks !== Math.ceil(entry.size / chunkSize)
        ) {
          throw corrupt(
            key,
            `the end record says ${entry.size} bytes in ${entry.chunks} chunks; read ${this.#pos} bytes in ${entry.n}`,
          );
        }
        if (this.#crc !== undefined && entry.crc32 !== this.#crc) {
          throw corrupt(
            key,
            `checksum mismatch: the end record says crc32 ${formatCrc(entry.crc32)}, the pieces give ${formatCrc(this.#crc)}`,
          );
        }
        // After a rewind, the file ends before bytes this reader delivered from the writer before
        // (bytes it read before its range's start were not delivered: a start past the end is a
        // range error, told by the reader).
        const deliveredTo = Math.min(this.#pos + this.#skip, this.#end + 1);
        if (this.#skip > 0 && deliveredTo > Math.max(entry.size, this.#start)) {
          throw corrupt(
            key,
            `the writer that resumed it ended the file at byte ${entry.size}, but this reader had delivered its bytes up to ${deliveredTo}`,
          );
        }
        return { kind: 'end', size: entry.size, chunks: entry.chunks, crc32: formatCrc(entry.crc32) };
      }
      case 'abort':
        if (!isRecord)
          throw corrupt(
            key,
            `the abort record ${entry.id} comes where piece ${pieceId(piece.n, piece.s)} was expected`,
          );
        return { kind: 'abort', reason: entry.reason };
    }
  }

  #checkHeader(header: Extract<Entry, { kind: 'header' }>): void {
    if (header.version !== String(FORMAT_VERSION)) {
      throw badFormat(
        this.#key,
        `its header says format version ${JSON.stringify(header.version)}; this version reads ${FORMAT_VERSION}`,
      );
    }
    const layout = this.#layout;
    for (const field of ['gen', 'chunkSize', 'encoding'] as const) {
      if (header[field] !== layout[field]) {
        throw corrupt(
          this.#key,
          `the metadata hash says ${field} ${JSON.stringify(layout[field])}, the header (which wins) says ${JSON.stringify(header[field])}`,
        );
      }
    }
  }
}
