/**
 * Numbers (and the hash slot of a key) the client adapters and their users share: kept here, in a module that imports nothing,
 * so that the adapters need not import `port.ts`, which imports them.
 * @internal
 * @module
 */

/** The slots of a Redis Cluster. */
export const SLOTS = 16384;

/**
 * The longest a blocking read of the package waits on a connection of its own before Redis answers
 * (a channel receiver's wait for the next file; the followers' shared reads and the memory guard
 * wait 1 s): a timeout for commands on such a connection must be longer.
 */
export const LONGEST_BLOCK_MS = 5000;

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
  return crc & (SLOTS - 1);
}
