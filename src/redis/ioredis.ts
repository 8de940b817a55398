/**
 * The adapter for ioredis and iovalkey (a fork of ioredis with the same API): `Redis` and
 * `Cluster`. Neither library is imported: the caller's client is used through its methods.
 * @internal
 * @module
 */

import { LONGEST_BLOCK_MS, SLOTS } from './limits.js';
import type { Arg, BlockingConnection, Connection, IoredisLikeClient, KeyWatch, RedisPort, Settled } from './port.js';
import { onceClosed, onceReady } from './ready.js';
import { Refusals } from './refusals.js';
import { hashSlot, noPrimary, redirection, slotMoving } from './slot.js';
import { INVALIDATE_CHANNEL, trackingArgs } from './tracking.js';

/** The members of an ioredis `Redis` or `Cluster` the adapter uses. */
interface Client {
  readonly status: string;
  readonly isCluster?: boolean;
  readonly options: {
    host?: string;
    port?: number;
    db?: number;
    commandTimeout?: number;
    keyPrefix?: unknown;
    enableAutoPipelining?: boolean;
    redisOptions?: { keyPrefix?: unknown };
  };
  /** The connection's state: `select`, the database selected now (a SELECT changes it). */
  readonly condition?: { readonly select?: number } | null;
  call(command: string, ...args: Arg[]): Promise<unknown>;
  callBuffer(command: string, ...args: Arg[]): Promise<unknown>;
  pipeline(commands: Arg[][]): { exec(): Promise<Settled[] | null> };
  sendCommand(command: Command): Promise<unknown>;
  duplicate(overrides?: object): Client;
  subscribe(channel: string): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** An ioredis `Command`: what `call` builds and `sendCommand` sends; `toWritable` encodes it. */
interface Command {
  toWritable(socket: unknown): string | Buffer;
}

type CommandClass = new (name: string, args: readonly Arg[], options: { replyEncoding: 'utf8' | null }) => Command;

interface ClusterClient extends Client {
  readonly slots: (string[] | undefined)[];
  nodes(role: 'master'): Client[];
  refreshSlotsCache(callback?: (err?: Error | null) => void): void;
  connect(): Promise<void>;
}

/**
 * Have a cluster client read its slots again, and wait for it. A client made with lazyConnect
 * connects at its first command; asking for its slots is none, so it is connected first.
 */
async function readSlots(c: ClusterClient): Promise<void> {
  if (c.status === 'wait') await c.connect().catch(() => {});
  await new Promise<void>((resolve) => c.refreshSlotsCache(() => resolve()));
}

/** Slot refreshes {@link RedisPort.primaries} makes before it gives up on a slot without a primary. */
const PRIMARY_LOOKUPS = 4;

/**
 * What a connection of the package's own changes of the options it takes from the caller's client.
 * Its commands wait for it to connect (it is used as soon as it is made, whatever the client does
 * without a connection: `enableOfflineQueue`), and a timeout the client sets for commands
 * (`commandTimeout`) is counted past the longest wait of a blocking read, which it would cut short.
 */
function ownOptions(client: Client): object {
  const timeout = client.options.commandTimeout;
  return {
    enableOfflineQueue: true,
    ...(typeof timeout === 'number' ? { commandTimeout: timeout + LONGEST_BLOCK_MS } : {}),
  };
}

/** @internal */
export function isIoredisLike(value: unknown): value is IoredisLikeClient {
  const v = value as Partial<Client> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.callBuffer === 'function' &&
    typeof v.call === 'function' &&
    typeof v.duplicate === 'function' &&
    typeof v.pipeline === 'function' &&
    typeof v.options === 'object' &&
    v.options !== null
  );
}

function sender(client: Client): Connection['send'] {
  // ioredis's `call` loses the command's name when it is auto-pipelined (the pipeline's `call` is
  // handed the arguments without it): an auto-pipelining client is sent each command through the
  // method named after it (`xadd`, `xaddBuffer`), which auto-pipelines correctly.
  const methods = client.options.enableAutoPipelining === true ? (client as unknown as Methods) : undefined;
  return (_key, [command, ...args], buffers) => {
    // In lower case: a cluster client finds a command's keys (and so its node) by its name, and
    // iovalkey looks the name up as given (ioredis lower-cases it first).
    const name = String(command).toLowerCase();
    const method = methods?.[buffers ? `${name}Buffer` : name];
    if (typeof method === 'function') return method.apply(client, args);
    return buffers ? client.callBuffer(name, ...args) : client.call(name, ...args);
  };
}

/**
 * `send` on a connection of the package's own, failing what it sent once Redis has closed the
 * connection a few times in a row before it was ready, the caller's client being ready
 * (`callerReady()`, see refusals.ts); the connection is closed then. A cluster node's connection
 * does not reconnect: its first close fails its commands already.
 */
function refusable(conn: Client, send: Connection['send'], callerReady: () => boolean): Connection['send'] {
  let refused: Error | undefined;
  let reject!: (err: Error) => void;
  const refusal = new Promise<never>((_, r) => {
    reject = r;
  });
  refusal.catch(() => {});
  const refusals = new Refusals(callerReady, (err) => {
    refused = err;
    reject(err);
    conn.disconnect();
  });
  conn.on('connect', () => refusals.connected());
  conn.on('ready', () => refusals.ready());
  conn.on('error', (err: unknown) => refusals.failed(err as Error));
  conn.on('close', () => refusals.closed());
  return (key, args, buffers) =>
    refused !== undefined ? Promise.reject(refused) : Promise.race([send(key, args, buffers), refusal]);
}

/** A client's methods named after commands. */
type Methods = Record<string, ((...args: Arg[]) => Promise<unknown>) | undefined>;

/** What the package takes from the ioredis or iovalkey module a client comes from. */
interface Library {
  readonly Redis: abstract new (...args: never[]) => unknown;
  readonly Command: CommandClass;
}

/**
 * The ioredis and iovalkey modules the package resolves (peer dependencies, each loaded the first
 * time it is looked for: ioredis for any client of that shape, iovalkey for one that is not
 * ioredis's), by name; undefined for one that is missing.
 */
const libraries = new Map<string, Promise<Library | undefined>>();

function library(name: string): Promise<Library | undefined> {
  let loaded = libraries.get(name);
  if (loaded === undefined) {
    loaded = import(name).then(
      (mod: Partial<Library>) =>
        typeof mod.Redis === 'function' &&
        typeof mod.Command === 'function' &&
        typeof mod.Command.prototype.toWritable === 'function'
          ? (mod as Library)
          : undefined,
      () => undefined,
    );
    libraries.set(name, loaded);
  }
  return loaded;
}

/** @internal Whether an ioredis or iovalkey client has a `keyPrefix` (its own, or its cluster nodes'). */
export function hasIoredisKeyPrefix(value: IoredisLikeClient): boolean {
  const { keyPrefix, redisOptions } = (value as unknown as Client).options;
  return Boolean(keyPrefix || redisOptions?.keyPrefix);
}

/**
 * Whether commands can be handed to the client encoded by the package (see `sendEncoded`), as far
 * as its options tell; whether its library's `Command` class is found is told by
 * {@link commandClass}. Not with:
 * - a `keyPrefix`, which rewrites keys as commands are built;
 * - auto-pipelining defers `call`s to the next tick, which would put an encoded command ahead of
 *   ones called before it;
 * - a cluster client writes to a connection per node: a command's bytes could still wait in the
 *   socket of a node the slot left while the chunk, stored through another node, has its buffer
 *   filled again. A single connection writes in order: a chunk is acknowledged only after every
 *   byte written before it left, and a closed connection drops what it had not written.
 */
function encodable(client: Client, cluster: boolean): boolean {
  return (
    !cluster && !client.options.enableAutoPipelining && !hasIoredisKeyPrefix(client as unknown as IoredisLikeClient)
  );
}

/**
 * The client's `Command` class: the one of the module whose `Redis` the client is an instance of
 * (`client.constructor` is not that class: ioredis mixes EventEmitter's prototype in). Null when
 * the client comes from a copy of the library the package does not resolve.
 */
async function commandClass(client: Client): Promise<CommandClass | null> {
  for (const name of ['ioredis', 'iovalkey']) {
    const lib = await library(name);
    if (lib && client instanceof lib.Redis) return lib.Command;
  }
  return null;
}

/** @internal */
export function ioredisPort(value: IoredisLikeClient): RedisPort {
  const client = value as unknown as Client;
  const cluster = client.isCluster === true;
  /** The primary of a cluster at `hostPort` ("host:port", as `cluster.slots` names nodes). */
  const nodeAt = (hostPort: string | undefined): Client | undefined =>
    hostPort === undefined
      ? undefined
      : (client as ClusterClient).nodes('master').find((n) => `${n.options.host}:${n.options.port}` === hostPort);
  /**
   * A plain connection of its own to the primary that serves `slot` (undefined while none is
   * known): it does not follow the slot by itself (no reconnection); its owner asks the cluster
   * where the slot went and connects there.
   */
  const nodeConnection = (slot: number, overrides: object = {}): Client | undefined => {
    const node = nodeAt((client as ClusterClient).slots[slot]?.[0]);
    return node?.duplicate({
      ...ownOptions(node),
      lazyConnect: false,
      readOnly: false,
      retryStrategy: () => null,
      ...overrides,
    });
  };
  const send = sender(client);
  // Looked up once; until it is known (a module loading), commands are sent as usual.
  let Command: CommandClass | null = null;
  const mayEncode = encodable(client, cluster);
  const encodes = mayEncode
    ? commandClass(client).then((found) => {
        Command = found;
        return found !== null;
      })
    : Promise.resolve(false);
  // Absent where encodings are never taken: the window then does not write them for nothing.
  const sendEncoded: RedisPort['sendEncoded'] = (key, args, wire, current) => {
    // ioredis copies each command with a Buffer argument into a new buffer (Command#toWritable)
    // before writing it: for a chunk, a copy of its bytes and a fresh allocation per chunk. A
    // command whose toWritable returns the encoding as written skips both; ioredis's own Script
    // commands override toWritable the same way. The reply, the offline queue and re-sends
    // after a reconnection go as for any command.
    if (Command === null) return send(key, args);
    const [name, ...rest] = args;
    const command = new Command(String(name).toLowerCase(), rest, { replyEncoding: 'utf8' });
    const encode = command.toWritable;
    command.toWritable = (socket) => (current() ? wire : encode.call(command, socket));
    return client.sendCommand(command);
  };
  return {
    library: 'ioredis',
    cluster,
    send,
    encodes,
    ...(mayEncode ? { sendEncoded } : {}),
    async batch(key, commands) {
      const pipelined = commands.map(([name, ...args]) => [String(name).toLowerCase(), ...args]);
      // A pipeline goes out on one connection.
      if (!cluster) return (await client.pipeline(pipelined).exec()) ?? [];
      // On a cluster, on the connection to the node the slot map names for `key`, not through the
      // cluster's pipeline: that one follows a redirection (a slot moved) by sending the redirected
      // commands again on their own to the new node, while the keyless WAIT of the batch has
      // answered from the old node, which never saw them (ioredis 6.1); or fails the batch with
      // the redirection (ioredis 6.0, iovalkey). Here the whole batch goes to the node a
      // redirection names.
      const c = client as ClusterClient;
      // Closed by its owner: its nodes are gone, and so is any chance of an answer.
      if (c.status === 'end') throw new Error('Connection is closed.');
      const slot = hashSlot(key);
      let node = nodeAt(c.slots[slot]?.[0]);
      if (node === undefined) {
        // Not connected yet (no slot map), or a node the client has not connected to yet.
        await readSlots(c);
        node = nodeAt(c.slots[slot]?.[0]);
        if (node === undefined) throw noPrimary(slot);
      }
      const replies = (await node.pipeline(pipelined).exec()) ?? [];
      // Redirected, nothing of it ran: the batch goes once to the node named, the slot having
      // moved (the slot map is read again for the next ones) or being migrated with its keys gone
      // (each command after an ASKING, which covers the next command only). That node's WAIT
      // counts its own replicas. Redirected again, the caller sends it again later.
      const to = redirection(replies);
      if (to === undefined) return replies;
      if (!to.ask) c.refreshSlotsCache();
      const target = nodeAt(to.node);
      if (target === undefined) return replies;
      if (!to.ask) return (await target.pipeline(pipelined).exec()) ?? [];
      const again = (await target.pipeline(pipelined.flatMap((command) => [['asking'], command])).exec()) ?? [];
      return again.filter((_, i) => i % 2 === 1);
    },
    openBlocking(slot) {
      let conn: Client;
      // In the database the client has selected now: a SELECT since it connected counts.
      if (!cluster)
        conn = client.duplicate({ ...ownOptions(client), db: client.condition?.select ?? client.options.db });
      else {
        const own = nodeConnection(slot ?? 0);
        if (own === undefined) return undefined;
        conn = own;
      }
      // A closed blocking connection rejects its pending command; its owner has moved on by then,
      // so the error event carries nothing the owner does not know.
      conn.on('error', () => {});
      const hostPort = `${conn.options.host}:${conn.options.port}`;
      return {
        send: refusable(conn, sender(conn), () => (cluster ? nodeAt(hostPort) : client)?.status === 'ready'),
        unblock: async (id) => {
          const via = cluster ? nodeAt(hostPort) : client;
          if (via === undefined) throw new Error(`no connection to ${hostPort} to unblock a read`);
          return Number(await via.call('CLIENT', 'UNBLOCK', id));
        },
        close: () => conn.disconnect(),
      } satisfies BlockingConnection;
    },
    nodeOf(slot) {
      return cluster ? (client as ClusterClient).slots[slot]?.[0] : undefined;
    },
    openKeyWatch(slot, prefixes, onKeys, onEnd) {
      // RESP2 (ioredis 6 speaks RESP3 by default, and drops the invalidation pushes of RESP3):
      // the invalidations come as messages of a channel, with the keys as an array.
      const conn = cluster ? nodeConnection(slot, { protocol: 2 }) : undefined;
      if (conn === undefined) return undefined;
      let closed = false;
      conn.on('error', () => {});
      conn.on('messageBuffer', (channel: unknown, message: unknown) => {
        if (String(channel) !== INVALIDATE_CHANNEL) return;
        onKeys(Array.isArray(message) ? message.map(String) : null);
      });
      conn.once('end', () => {
        if (!closed) onEnd();
      });
      const ready = (async () => {
        const id = await conn.call('CLIENT', 'ID');
        await conn.call(...trackingArgs(Number(id), prefixes));
        await conn.subscribe(INVALIDATE_CHANNEL);
      })();
      ready.catch(() => {});
      return {
        ready,
        close: () => {
          closed = true;
          conn.disconnect();
        },
      } satisfies KeyWatch;
    },
    refreshSlots() {
      // A single server has no slots (a blocking read woken by UNBLOCKED or LOADING asks too).
      if (cluster) (client as ClusterClient).refreshSlotsCache();
    },
    async primaries() {
      if (!cluster) return [{ send }];
      const c = client as ClusterClient;
      // The client's own list of primaries can miss one: after a failover it drops the old primary
      // at once and learns of the new one only at its next slot refresh (a listing then skipped a
      // shard and ended as if complete). So the slots are refreshed, and every slot's primary must
      // be known; while one is not (a failover under way), refreshed again, then an error.
      for (let lookup = 1; ; lookup++) {
        await readSlots(c);
        const primaries = new Set(Array.from({ length: SLOTS }, (_, slot) => c.slots[slot]?.[0]));
        const nodes = [...primaries].map(nodeAt);
        if (nodes.every((node) => node !== undefined)) return nodes.map((node) => ({ send: sender(node) }));
        if (lookup === PRIMARY_LOOKUPS) throw new Error('no primary of the cluster is known for some of its slots');
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** lookup));
      }
    },
    state() {
      if (client.status === 'ready') return 'ready';
      return client.status === 'connecting' || client.status === 'connect' || client.status === 'wait'
        ? 'connecting'
        : 'down';
    },
    closed: () => client.status === 'end',
    onClosed: (listener) => onceClosed(client, 'end', () => client.status === 'end', listener),
    onceReady: (listener) => onceReady(client, listener),
    isReplyError(err) {
      return err instanceof Error && err.name === 'ReplyError';
    },
    isTransient(err) {
      if (!(err instanceof Error)) return false;
      // A cluster node that held a slot is gone and no replica has taken over yet: the redirections
      // and slot refreshes ran out first.
      if (/^(Too many Cluster redirections|Failed to refresh slots cache)/.test(err.message)) return true;
      // A batch sent to the node that held a slot which has moved, or is moving (see batch).
      if (cluster && client.status !== 'end' && slotMoving(err)) return true;
      return (
        cluster &&
        client.status !== 'end' &&
        client.status !== 'close' &&
        /^(Command aborted due to connection close|Connection is closed)/.test(err.message)
      );
    },
  };
}
