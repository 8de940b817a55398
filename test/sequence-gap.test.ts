/**
 * The reader's check of the entry sequence: the piece of the next chunk where the rest of a partly
 * filled chunk should come is a gap, which the reader waits out while the writer lives (a piece
 * sent again after a dropped connection or a failover can land after later ones), and which is
 * damage at once otherwise (test/conformance: the same entries in a complete file are CORRUPT).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { decodeEntry } from '../src/format/chunks.js';
import { EntrySequence } from '../src/sequence.js';
import { headerFields, pieceFields } from './helpers/keys.js';

const fields = (list: (string | Buffer)[]): Buffer[] => list.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)));

describe('a partly filled chunk followed by a piece of the next chunk', () => {
  it('is a gap at the missing piece, not damage, and the sequence goes on once the piece comes', () => {
    const seq = new EntrySequence(
      'k',
      { gen: 'g', chunkSize: 8, encoding: 'identity' },
      { firstChunk: 0, withHeader: true, start: 0, end: Number.POSITIVE_INFINITY, checksum: true },
    );
    expect(seq.accept(decodeEntry('0-1', fields(headerFields('g', 8))))).toEqual({ kind: 'header' });
    expect(seq.accept(decodeEntry('0-2', fields(pieceFields(Buffer.from('abc')))))).toMatchObject({ kind: 'bytes' });
    // 0-3 (the rest of chunk 0) is missing: 1-2 comes where it or an end record could.
    expect(seq.accept(decodeEntry('1-2', fields(pieceFields(Buffer.from('ijklmnop')))))).toEqual({
      kind: 'gap',
      expected: '0-3',
    });
    // Read again from where it stopped, the sequence takes the piece that was missing.
    expect(seq.accept(decodeEntry('0-3', fields(pieceFields(Buffer.from('defgh')))))).toMatchObject({ kind: 'bytes' });
    expect(seq.accept(decodeEntry('1-2', fields(pieceFields(Buffer.from('ijklmnop')))))).toMatchObject({
      kind: 'bytes',
    });
  });
});
