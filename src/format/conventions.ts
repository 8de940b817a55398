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
  if (text === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}
