/**
 * The keys the package creates beside its files: a channel's announcement log and the stream that
 * announces freed memory to writers held back by a limit, with the fields of their entries.
 * @internal
 * @module
 */

import { encodeKey } from './keys.js';

/**
 * The key of a channel's announcement log: `P` + `channel:{name'}:log`. File keys always follow
 * the prefix with `{`, so no file key can collide with a channel's.
 * @internal
 */
export function channelLogKey(prefix: string, channel: string): string {
  return `${prefix}channel:{${encodeKey(channel)}}:log`;
}

/** @internal Fields of a channel's log entries. */
export const ChannelField = Object.freeze({
  /** Announces a file: its key in Redis; with `name` (and `size` when known). */
  file: 'file',
  name: 'name',
  size: 'size',
  /** Closes the channel: a random token, so that every close is a distinct entry. */
  close: 'close',
} as const);

/** @internal The field of an entry of `Pmemory:freed`: the key of the file that freed memory. */
export const FREED_FIELD = 'freed';

/** @internal The key of the stream that announces freed memory to writers held back by a limit. */
export function memoryEventsKey(prefix: string): string {
  return `${prefix}memory:freed`;
}
