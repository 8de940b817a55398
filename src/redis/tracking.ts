/**
 * CLIENT TRACKING in broadcast mode, as a {@link KeyWatch} uses it: the command, and the channel
 * its messages come on.
 * @internal
 * @module
 */

import type { Arg } from './port.js';

/** @internal The channel of CLIENT TRACKING's invalidation messages (RESP2). */
export const INVALIDATE_CHANNEL = '__redis__:invalidate';

/**
 * @internal CLIENT TRACKING in broadcast mode for `prefixes`, its messages redirected to the
 * connection `id` (the one that sends it, subscribed to {@link INVALIDATE_CHANNEL} next).
 */
export function trackingArgs(id: number, prefixes: readonly string[]): [string, ...Arg[]] {
  return ['CLIENT', 'TRACKING', 'ON', 'REDIRECT', id, 'BCAST', ...prefixes.flatMap((p) => ['PREFIX', p])];
}
