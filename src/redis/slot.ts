/**
 * The hash slot of a key, for the adapters (which send commands to the node of a slot) and the
 * package's blocking reads (which share a connection per node).
 * @internal
 * @module
 */

import { Buffer } from 'node:buffer';

/** @internal The hash slot of a key, as Redis Cluster computes it (CRC16 of the hash tag). */
export function hashSlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 16383;
}

/**
 * Where a cluster sends a batch instead: when every command of it but the last (a WAIT, which has
 * no key) was answered with the same redirection, `MOVED <slot> <host:port>` (the slot has moved)
 * or `ASK <slot> <host:port>` (it is being migrated, and its keys have gone), none of them ran:
 * that node ("host:port"), and whether it was an ASK. Undefined otherwise.
 * @internal
 */
export function redirection(
  replies: readonly (readonly [Error | null, unknown])[],
): { readonly node: string; readonly ask: boolean } | undefined {
  let found: { node: string; ask: boolean } | undefined;
  for (const [err] of replies.slice(0, -1)) {
    const to = err instanceof Error ? /^(MOVED|ASK) \d+ (\S+)/.exec(err.message) : null;
    if (to === null) return undefined;
    const here = { node: to[2]!, ask: to[1] === 'ASK' };
    if (found !== undefined && (found.node !== here.node || found.ask !== here.ask)) return undefined;
    found = here;
  }
  return found;
}

/** How the error of a batch for a slot whose primary the client does not know begins. */
const NO_PRIMARY = 'no primary of slot';

/** @internal The error of a batch for `slot`, whose primary the client does not know yet. */
export function noPrimary(slot: number): Error {
  return new Error(`${NO_PRIMARY} ${slot} of the cluster is known yet`);
}

/**
 * @internal Whether `err` is what a cluster batch meets when its slot moves under it: a
 * redirection it did not follow, or no known primary (see {@link redirection}, {@link noPrimary});
 * sent again later, it finds the slot's node.
 */
export function slotMoving(err: unknown): boolean {
  return err instanceof Error && (/^(MOVED|ASK) /.test(err.message) || err.message.startsWith(NO_PRIMARY));
}
