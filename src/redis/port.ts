/**
 * What the package needs from a Redis client, and nothing more: commands with string or Buffer
 * replies, a few commands written together on one connection, connections of its own for
 * blocking reads, the primaries of a cluster, and whether the client is connected. Each client
 * library the package accepts has one small adapter (./ioredis.ts, ./node-redis.ts); no other
 * module knows which library a caller holds.
 *
 * Replies keep the shapes of RESP2 whatever protocol the caller's client speaks: a map is a flat
 * array of keys and values (HGETALL), and XREAD's streams are an array of `[key, entries]` pairs.
 * @internal
 * @module
 */

import { hasIoredisKeyPrefix, ioredisPort, isIoredisLike } from './ioredis.js';
import { isNodeRedisLike, nodeRedisPort } from './node-redis.js';

/** An argument of a command. */
export type Arg = string | number | Buffer;

/** One command's outcome in {@link Connection.batch}: its error, or null and its reply. */
export type Settled = [Error | null, unknown];

/** A connection to Redis, or a cluster client that routes each command by its first key. */
export interface Connection {
  /**
   * Send one command. `key` is its first key (a cluster routes by it; undefined for a keyless
   * command). Bulk strings come back as strings, or as Buffers when `buffers` is set.
   */
  send(key: string | undefined, args: readonly Arg[], buffers?: boolean): Promise<unknown>;
}

/** A connection the package opened for blocking reads, closed by the package. */
export interface BlockingConnection extends Connection {
  /** CLIENT UNBLOCK `id` through another connection to the same server: 1 when it woke a command. */
  unblock(id: number): Promise<number>;
  /** Close at once, rejecting what is pending. */
  close(): void;
}

/**
 * A connection that hears which keys change on one server: CLIENT TRACKING in broadcast mode for
 * some key prefixes, its invalidation messages redirected to itself and subscribed to. It costs the
 * server one short message per modified key that matches, and needs no configuration of it
 * (unlike keyspace notifications) and nothing of the writers.
 */
export interface KeyWatch {
  /** Settles once changes are reported (tracking on and subscribed); rejects when that failed. */
  readonly ready: Promise<void>;
  /** Close at once; `onEnd` is not called for it. */
  close(): void;
}

/** What a {@link KeyWatch} reports: changed keys, or null when the server dropped every key (FLUSHALL). */
export type ChangedKeys = (keys: string[] | null) => void;

/** The caller's client, as the package uses it. One per client (see {@link portOf}). */
export interface RedisPort extends Connection {
  /** Which library the client comes from, for messages. */
  readonly library: 'ioredis' | 'node-redis';
  /** Whether the client is a cluster client. */
  readonly cluster: boolean;
  /**
   * Send commands in order, written together on one connection (on a cluster, the connection to
   * the node the client's slot map names for `key`), so that a keyless command such as WAIT runs
   * where the others did. On a cluster, a batch redirected as a whole (MOVED, ASK: none of it ran)
   * goes once, whole, to the node named; redirected again, or only in part, the redirections come
   * back as the commands' errors (transient, see {@link RedisPort.isTransient}), and the caller
   * sends them again. Bulk strings come back as strings.
   */
  batch(key: string, commands: readonly (readonly Arg[])[]): Promise<Settled[]>;
  /**
   * Send one command whose RESP encoding the caller wrote already (`wire`, the exact encoding of
   * `args`; see ./resp.ts): the client writes `wire` to its socket as it is, where it would
   * otherwise copy every argument into an encoding of its own. Bulk strings come back as strings.
   * Whenever the client writes the command (again, after a reconnection), it writes `wire` only
   * while `current()` says that `wire` still holds that encoding, else it encodes `args` itself.
   * Present only for clients that copy (ioredis, iovalkey, single servers) and can be handed an
   * encoding.
   */
  sendEncoded?(key: string, args: readonly Arg[], wire: Buffer, current: () => boolean): Promise<unknown>;
  /**
   * Settles once {@link sendEncoded} knows whether it writes encodings as they are (true) or sends
   * commands as usual (false; it does so until then).
   */
  readonly encodes?: Promise<boolean>;
  /**
   * A connection of its own: to the server, or on a cluster to the primary that serves `slot`
   * (undefined while no primary is known for it). It carries the caller's options (address,
   * TLS, user, password, name); on a cluster it does not follow the slot by itself.
   */
  openBlocking(slot?: number): BlockingConnection | undefined;
  /** On a cluster, the address of the primary that serves `slot` (undefined while none is known). */
  nodeOf(slot: number): string | undefined;
  /**
   * A {@link KeyWatch} of its own on the primary that serves `slot` (a cluster only; undefined
   * while no primary is known for it), reporting keys that start with one of `prefixes` to
   * `onKeys`; `onEnd` is called once if the connection ends by itself.
   */
  openKeyWatch(slot: number, prefixes: readonly string[], onKeys: ChangedKeys, onEnd: () => void): KeyWatch | undefined;
  /** Have the cluster client look up where slots live, after a blocking read met MOVED. */
  refreshSlots(key: string): void;
  /**
   * One connection per primary (all one for a single server), for SCAN. With `refresh`, a cluster
   * client reads the cluster's slots again first (ioredis's adapter always does).
   */
  primaries(refresh?: boolean): Promise<Connection[]>;
  /** 'ready', 'connecting' (a first connection on its way), or 'down' (closed, or reconnecting). */
  state(): 'ready' | 'connecting' | 'down';
  /**
   * Whether the client is closed for good: its owner quit or disconnected it (or it gave up
   * reconnecting). The package's own connections for blocking reads then close too, and what
   * waits on them fails, rather than waiting on for a client nobody can use.
   */
  closed(): boolean;
  /**
   * Call `listener` once, as soon as the client says it is closed for good (ioredis's, iovalkey's
   * and node-redis's clients emit `end`, a node-redis cluster `disconnect`); returns a function
   * that cancels it.
   */
  onClosed(listener: () => void): () => void;
  /** Call `listener` once when the client is next ready; returns a function that cancels it. */
  onceReady(listener: () => void): () => void;
  /** Whether `err` is an error reply from Redis (as opposed to a connection or client failure). */
  isReplyError(err: unknown): boolean;
  /**
   * Whether `err` is the client's own failure that a retry of the same command may overcome (a
   * cluster connection that closed under the command while the cluster client stays open, a
   * cluster client that ran out of redirections while a replica took over).
   */
  isTransient(err: unknown): boolean;
}

/**
 * A Redis client the package accepts: an ioredis or iovalkey `Redis` or `Cluster`, or a node-redis
 * client from `createClient()` or `createCluster()` (connected by its owner). Described by shape,
 * so that the package's types name no client library: a project installs only the one it uses.
 */
export type RedisClient = IoredisLikeClient | NodeRedisLikeClient;

/** The shape of an ioredis or iovalkey `Redis` or `Cluster`. */
export interface IoredisLikeClient {
  call(...args: never[]): Promise<unknown>;
  callBuffer(...args: never[]): Promise<unknown>;
  duplicate(...args: never[]): unknown;
  pipeline(...args: never[]): unknown;
}

/**
 * The shape of a node-redis client or cluster (`createClient()`, `createCluster()`). A node-redis
 * sentinel (`createSentinel()`) has these members too, but sends commands with other arguments and
 * gives its connections out by lease: it is not accepted (`getMasterNode` tells it apart).
 */
export interface NodeRedisLikeClient {
  sendCommand(...args: never[]): Promise<unknown>;
  withTypeMapping(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
  readonly getMasterNode?: never;
}

const ports = new WeakMap<object, RedisPort>();

/** Whether `value` is a client the package accepts (checked at the call, before any I/O). */
export function isRedisClient(value: unknown): value is RedisClient {
  return isIoredisLike(value) || isNodeRedisLike(value);
}

/**
 * Whether `value` is an ioredis or iovalkey client with a `keyPrefix`. The client prefixes the keys
 * of commands but not the key names in replies (XREAD's streams), in SCAN patterns or built inside
 * scripts: the package names its keys with its own `prefix` option instead.
 */
export function hasKeyPrefix(value: RedisClient): boolean {
  return isIoredisLike(value) && hasIoredisKeyPrefix(value);
}

/** The port of a client that {@link isRedisClient} accepted; the same object for the same client. */
export function portOf(client: RedisClient): RedisPort {
  let port = ports.get(client);
  if (port === undefined) {
    port = isIoredisLike(client) ? ioredisPort(client) : nodeRedisPort(client);
    ports.set(client, port);
  }
  return port;
}

/**
 * A hash's fields and values (HGETALL) as a record: from a flat array, or from the object ioredis
 * and iovalkey make of it (their reply transformer for `hgetall`).
 */
export function toRecord(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, value] of fieldsOf(reply)) out[field] = String(value);
  return out;
}

/**
 * @internal The fields of a map reply, their values as they came (a nested reply stays one): from a
 * flat array of fields and values (RESP2, or a map mapped so), a Map, or an object.
 */
export function fieldsOf(reply: unknown): Map<string, unknown> {
  if (reply instanceof Map) return new Map([...reply].map(([field, value]) => [String(field), value]));
  if (typeof reply === 'object' && reply !== null && !Array.isArray(reply)) return new Map(Object.entries(reply));
  const out = new Map<string, unknown>();
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), reply[i + 1]);
  return out;
}

/** The description of what the `client` argument must be, for the TypeError of a bad one. */
export const CLIENT_EXPECTED =
  'an ioredis, iovalkey or node-redis client (Redis or Cluster; not a node-redis sentinel: give a client of its master)';
