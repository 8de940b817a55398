/**
 * CRC-32 (the zlib / gzip one): a fast native implementation when `@node-rs/crc32` loads, else
 * `zlib.crc32`, which gives the same values; and the combination of two CRCs without the bytes.
 * @internal
 * @module
 */

import { Buffer } from 'node:buffer';
import { crc32 as zlibCrc32 } from 'node:zlib';

/** Which implementation computes CRC-32s: the SIMD one of `@node-rs/crc32`, or Node's zlib. */
export type CrcImplementation = '@node-rs/crc32' | 'zlib';

type Crc32 = (data: Buffer, initial?: number) => number;

let impl: Crc32 = zlibCrc32;
let implName: CrcImplementation = 'zlib';

// An optional dependency: loaded asynchronously so that one source works in the ESM and the
// CommonJS build. Until it has loaded, zlib computes the very same values, so nothing waits for it.
const NATIVE = '@node-rs/crc32';
const loaded: Promise<CrcImplementation> = import(NATIVE).then(
  (mod: { crc32?: Crc32; default?: { crc32?: Crc32 } }) => {
    const native = mod.crc32 ?? mod.default?.crc32;
    // Only trusted once it agrees with zlib on a known value.
    if (typeof native === 'function' && native(Buffer.from('123456789')) === 0xcbf43926) {
      impl = native;
      implName = '@node-rs/crc32';
    }
    return implName;
  },
  () => implName,
);

/** @internal CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it). */
export function crc32(data: Buffer, initial = 0): number {
  return impl(data, initial) >>> 0;
}

/**
 * Which implementation computes the package's CRC-32s (`'@node-rs/crc32'` when the optional
 * dependency loads on this platform, else `'zlib'`). Both give the same values; the native one is
 * about twice as fast, which shows in checked reads.
 */
export function crcImplementation(): Promise<CrcImplementation> {
  return loaded;
}

// CRC-32 combination (after zlib's crc32_combine): the CRC of A followed by B from the CRCs of A
// and B and the length of B, in O(log len) steps of polynomial arithmetic modulo the CRC
// polynomial, so that a file's CRC comes from its pieces' CRCs without reading the bytes again.
const POLY = 0xedb88320;

/** a × b modulo the CRC polynomial (reflected bit order). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, for k = 0 … 31. */
const X2N: number[] = (() => {
  const table: number[] = [];
  let p = 0x40000000; // x^1
  table.push(p);
  for (let k = 1; k < 32; k++) table.push((p = multModP(p, p)));
  return table;
})();

/** x^(n × 2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

// The operator for the last length combined: a reader combines every full chunk's CRC with the
// same length, and x2nModP is the costly part (about 20 multiplications).
let lastLength = -1;
let lastOperator = 0;

/** @internal The CRC-32 of A followed by B, given crc(A), crc(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB === 0) return crcA >>> 0;
  if (lengthB !== lastLength) {
    lastOperator = x2nModP(lengthB, 3);
    lastLength = lengthB;
  }
  return (multModP(lastOperator, crcA) ^ crcB) >>> 0;
}

/** @internal A CRC-32 as stored: exactly 8 lowercase hex digits. */
export function formatCrc(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** @internal The value of a stored CRC-32, or undefined when it is not 8 lowercase hex digits. */
export function parseCrc(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseHex8(text.length, (i) => text.charCodeAt(i));
}

/**
 * @internal {@link parseCrc} of the bytes of a reply, without making a string of them: a reader
 * parses one per piece.
 */
export function parseCrcBytes(bytes: Uint8Array): number | undefined {
  return parseHex8(bytes.length, (i) => bytes[i]!);
}

/** 8 lowercase hex digits, given the length and the character codes, as a number; else undefined. */
function parseHex8(length: number, codeAt: (i: number) => number): number | undefined {
  if (length !== 8) return undefined;
  let crc = 0;
  for (let i = 0; i < 8; i++) {
    const code = codeAt(i);
    let digit: number;
    if (code >= 0x30 && code <= 0x39) digit = code - 0x30;
    else if (code >= 0x61 && code <= 0x66) digit = code - 0x61 + 10;
    else return undefined;
    crc = crc * 16 + digit;
  }
  return crc;
}
