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
