/**
 * The Redis clients the package accepts, and the few things it needs from them.
 * @internal
 * @module
 */

import type { Cluster, Redis } from 'ioredis';

/**
 * An ioredis client: a `Redis` connection, or a `Cluster`. Every key of one file shares a hash
 * tag, so a cluster routes all of a file's commands to one node.
 */
export type RedisClient = Redis | Cluster;

/**
 * Open a connection of its own for blocking reads, so that an `XREAD BLOCK` never holds up the
 * caller's shared connection. It inherits the caller's options (address, TLS, user, password).
 * @internal
 */
export function openBlockingConnection(client: RedisClient): RedisClient {
  // Both classes take no arguments here; their signatures differ only in what may be overridden.
  const dup: RedisClient = (client as Redis).duplicate();
  // A closed blocking connection rejects its pending command; the stream that owns it has already
  // moved on by then, so the error event carries nothing the stream does not know.
  dup.on('error', () => {});
  return dup;
}

/**
 * Close a connection at once, dropping whatever is pending on it.
 * @internal
 */
export function closeConnection(conn: RedisClient | undefined): void {
  if (conn === undefined) return;
  conn.disconnect();
}

/** @internal Whether a value looks like an ioredis client (checked at the call, before any I/O). */
export function isRedisClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Redis).xadd === 'function' &&
    typeof (value as Redis).evalsha === 'function' &&
    typeof (value as Redis).duplicate === 'function'
  );
}
