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
 * The node ("host:port") a batch is asked to go to while its slot is being migrated: when every
 * command of it but the last (a WAIT, which has no key) was answered `ASK <slot> <host:port>`
 * (none of them ran), undefined otherwise.
 * @internal
 */
export function askedNode(replies: readonly (readonly [Error | null, unknown])[]): string | undefined {
  const keyed = replies.slice(0, -1);
  let node: string | undefined;
  for (const [err] of keyed) {
    const ask = err instanceof Error ? /^ASK \d+ (\S+)/.exec(err.message) : null;
    if (ask === null || (node !== undefined && node !== ask[1])) return undefined;
    node = ask[1];
  }
  return node;
}
