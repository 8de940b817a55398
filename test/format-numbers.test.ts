// The format's numbers, CRCs and entry ids as a reader parses them (docs/format.md, "Conventions"):
// exactly the stored forms, nothing looser. No Redis: the parsers alone.

import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { parseCrc, parseCrcBytes } from '../src/crc.js';
import { parseId } from '../src/format/chunks.js';
import { parseDecimal, parseNumber } from '../src/format/conventions.js';

describe('numbers', () => {
  it('are ASCII decimal without sign or leading zero, up to 2^53 - 1', () => {
    for (const [text, value] of [
      ['0', 0],
      ['7', 7],
      ['10', 10],
      ['262144', 262144],
      ['9007199254740991', 2 ** 53 - 1],
    ] as const) {
      expect(parseNumber(text)).toBe(value);
    }
    for (const text of [
      undefined,
      '',
      '00',
      '01',
      '-1',
      '+1',
      ' 1',
      '1 ',
      '1.0',
      '1e3',
      '0x10',
      '١', // an Arabic-Indic digit
      '9007199254740992',
      '12345678901234567',
    ]) {
      expect(parseNumber(text), String(text)).toBeUndefined();
    }
  });

  it('are parsed from part of a text as from that part alone', () => {
    expect(parseDecimal('ab12cd', 2, 4)).toBe(12);
    expect(parseDecimal('ab012', 2, 5)).toBeUndefined();
    expect(parseDecimal('abc', 1, 1)).toBeUndefined();
  });
});

describe('CRC-32s', () => {
  it('are exactly 8 lowercase hex digits, as text or as the bytes of a reply', () => {
    for (const [text, value] of [
      ['00000000', 0],
      ['cbf43926', 0xcbf43926],
      ['ffffffff', 0xffffffff],
      ['0000abcd', 0xabcd],
    ] as const) {
      expect(parseCrc(text)).toBe(value);
      expect(parseCrcBytes(Buffer.from(text, 'latin1'))).toBe(value);
    }
    for (const text of ['', 'abcd', '0000abc', '00000abcd', 'CBF43926', 'cbf4392g', ' bf43926', 'cbf4392-']) {
      expect(parseCrc(text), text).toBeUndefined();
      expect(parseCrcBytes(Buffer.from(text, 'latin1')), text).toBeUndefined();
    }
    expect(parseCrc(undefined)).toBeUndefined();
  });
});

describe('entry ids', () => {
  it('are <record>-<piece>, each a number of the format', () => {
    expect(parseId('0-1')).toEqual({ n: 0, s: 1 });
    expect(parseId('1023-2')).toEqual({ n: 1023, s: 2 });
    for (const id of ['', '-', '5', '5-', '-2', '05-2', '5-02', '5-2-3', 'a-2', '5-b', '5 -2']) {
      expect(parseId(id), id).toBeUndefined();
    }
  });
});
