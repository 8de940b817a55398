/**
 * The options of the file operations (stat, list, remove, rename, expire): their types and their
 * resolvers, which check them synchronously at the call, before any I/O.
 * @internal
 * @module
 */

import { bool, checkKnown, checkObject, int, invalidType, type KeyOptions, outOfRange, prefix, str } from './common.js';

/** Options of {@link list}. */
export interface ListOptions extends KeyOptions {
  /**
   * Redis glob on the file keys, with Redis's syntax (`*`, `?`, `[abc]`, `[^a-z]`, `\` to escape),
   * matched against each key's characters: `?` is one character, however many bytes it takes.
   * @default '*'
   */
  match?: string;
  /**
   * SCAN's COUNT hint: how much of the keyspace one round trip looks at.
   * @default 1000
   */
  count?: number;
}

/** Options of {@link rename}. */
export interface RenameOptions extends KeyOptions {
  /**
   * Replace a complete or aborted file stored at the new key.
   * @default false
   */
  overwrite?: boolean;
}

/** @internal Options of stat / remove. */
export function resolveKeyOptions(options: KeyOptions | undefined): { readonly prefix: string } {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['prefix']);
  return Object.freeze({ prefix: prefix(o) });
}

/** @internal */
export function resolveListOptions(options: ListOptions | undefined): { prefix: string; match: string; count: number } {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['prefix', 'match', 'count']);
  return Object.freeze({
    prefix: prefix(o),
    match: str(o, 'match') ?? '*',
    count: int(o, 'count', 1000, 1, 1_000_000),
  });
}

/** @internal */
export function resolveRenameOptions(options: RenameOptions | undefined): { prefix: string; overwrite: boolean } {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['prefix', 'overwrite']);
  return Object.freeze({ prefix: prefix(o), overwrite: bool(o, 'overwrite', false) });
}

/** @internal Seconds for {@link expire}: a positive integer, or null to remove the expiry. */
export function checkSeconds(seconds: unknown): number | null {
  if (seconds === null) return null;
  if (typeof seconds !== 'number') throw invalidType('seconds', 'a positive integer or null', seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 2 ** 31 - 1) {
    throw outOfRange('seconds', `an integer from 1 to ${2 ** 31 - 1}, or null`, seconds);
  }
  return seconds;
}
