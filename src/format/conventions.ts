/**
 * The conventions every key and entry of the storage format follows: its version, and numbers as
 * it stores them (docs/format.md, "Conventions").
 * @internal
 * @module
 */

/** @internal Bumped whenever an older reader would misread what a newer writer stores. */
export const FORMAT_VERSION = 2;

/**
 * @internal A number as the format stores it: ASCII decimal, no sign, no leading zero, at most
 * 2^53 - 1. Undefined for anything else.
 */
export function parseNumber(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDecimal(text, 0, text.length);
}

/**
 * @internal {@link parseNumber} of `text` from `start` to `end` (exclusive), without a slice: a
 * reader parses two of them per entry it reads. Digits are checked one by one (no regular
 * expression); at most 16 of them, and the value a safe integer.
 */
export function parseDecimal(text: string, start: number, end: number): number | undefined {
  const length = end - start;
  if (length < 1 || length > 16) return undefined;
  // No leading zero, except for 0 itself.
  if (length > 1 && text.charCodeAt(start) === 0x30) return undefined;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    n = n * 10 + digit;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}
