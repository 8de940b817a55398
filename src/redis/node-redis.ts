/**
 * The adapter for node-redis (`redis`, `@redis/client`): a client from `createClient()` or a
 * cluster from `createCluster()`. The library is not imported: the caller's client is used
 * through `sendCommand`, with a type mapping that returns bulk strings as Buffers where the
 * package asks for them and maps as flat arrays (RESP3), as RESP2 gives them.
 * @internal
 * @module
 */

import { SLOTS } from './limits.js';
import type {
  Arg,
  BlockingConnection,
  ChangedKeys,
  Connection,
  KeyWatch,
  NodeRedisLikeClient,
  RedisPort,
  Settled,
} from './port.js';
import { onceClosed, onceReady } from './ready.js';
import { Refusals } from './refusals.js';
import { hashSlot, noPrimary, redirection, slotMoving } from './slot.js';
import { INVALIDATE_CHANNEL, trackingArgs } from './tracking.js';

/** node-redis's RESP type codes (`RESP_TYPES`), for `withTypeMapping`. */
const BLOB_STRING = 36;
const MAP = 37;

type Args = (string | Buffer)[];

/** The members of a node-redis client the adapter uses. */
interface Client {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  readonly options?: { socket?: object };
  sendCommand(args: Args): Promise<unknown>;
  withTypeMapping(mapping: Record<number, unknown>): Client;
  withCommandOptions(options: { typeMapping: Record<number, unknown>; timeout?: number }): Client;
  duplicate(overrides?: object): Client;
  subscribe(channel: string, listener: (message: unknown, channel: unknown) => void): Promise<unknown>;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface Node {
  readonly host: string;
  readonly port: number;
}

/** The members of a node-redis cluster the adapter uses. */
interface ClusterClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  readonly slots: ({ master: Node } | undefined)[];
  readonly masters: Node[];
  sendCommand(firstKey: string | undefined, isReadonly: boolean, args: Args): Promise<unknown>;
  withTypeMapping(mapping: Record<number, unknown>): ClusterClient;
  withCommandOptions(options: { typeMapping: Record<number, unknown>; timeout?: number }): ClusterClient;
  nodeClient(node: Node): Promise<Client>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** @internal */
export function isNodeRedisLike(value: unknown): value is NodeRedisLikeClient {
  const v = value as Partial<Client> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.sendCommand === 'function' &&
    typeof v.withTypeMapping === 'function' &&
    typeof v.duplicate === 'function' &&
    // A sentinel (createSentinel()): its sendCommand takes other arguments (see NodeRedisLikeClient).
    typeof (v as { getMasterNode?: unknown }).getMasterNode !== 'function'
  );
}

function isCluster(value: unknown): value is ClusterClient {
  return typeof (value as ClusterClient).nodeClient === 'function';
}

function strings(args: readonly Arg[]): Args {
  return args.map((a) => (typeof a === 'number' ? String(a) : a));
}

/** XREAD and XREADGROUP answer a map of streams: a flat array under RESP3, pairs under RESP2. */
const STREAM_MAPS = new Set(['XREAD', 'XREADGROUP']);

function normalise(command: Arg | undefined, reply: unknown): unknown {
  if (!Array.isArray(reply) || reply.length === 0 || Array.isArray(reply[0])) return reply;
  if (!STREAM_MAPS.has(String(command).toUpperCase())) return reply;
  const pairs: unknown[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
  return pairs;
}

const TEXT = { [MAP]: Array };
const BINARY = { [MAP]: Array, [BLOB_STRING]: Buffer };

/** What the adapter needs to make a view of a client or cluster with its own command options. */
interface Views<C> {
  withTypeMapping(mapping: Record<number, unknown>): C;
  withCommandOptions(options: { typeMapping: Record<number, unknown>; timeout?: number }): C;
}

/**
 * The view of `client` a command goes through: bulk strings as strings or as Buffers; with
 * `timeout`, a command that has not been answered by then fails (a TimeoutError).
 */
function viewer<C extends Views<C>>(client: C): (buffers: boolean | undefined, timeout: number | undefined) => C {
  const text = client.withTypeMapping(TEXT);
  const binary = client.withTypeMapping(BINARY);
  return (buffers, timeout) =>
    timeout === undefined
      ? buffers
        ? binary
        : text
      : client.withCommandOptions({ typeMapping: buffers ? BINARY : TEXT, timeout });
}

function sender(client: Client): Connection['send'] {
  const view = viewer(client);
  return resending(client, (_key, args, buffers, timeout) => view(buffers, timeout).sendCommand(strings(args)));
}

/** How often a command that a dropped connection failed is sent again (ioredis: maxRetriesPerRequest). */
const RESENDS = 20;
const RESEND_MAX_MS = 1000;
/**
 * How long a command may wait for a client that is down (reconnecting) to come back, as
 * ioredis's 20 retries per request last about 10 s: node-redis keeps it queued for as long as it
 * reconnects, by default for ever, and a stream would wait without a word while Redis is gone.
 */
const DOWN_WAIT_MS = 10_000;

/**
 * Send commands as ioredis does after a dropped connection: node-redis fails a command the
 * connection dropped under (and a cluster one whose node it replaced), where ioredis sends it
 * again once reconnected. The package is built for that (a piece stored twice is refused and
 * compared, every script recognises its own retry), so the adapter sends it again, queued until
 * the client has reconnected: at once, then after growing pauses, while the client stays open.
 */
function resending(
  client: { readonly isOpen: boolean; readonly isReady: boolean },
  send: (
    key: string | undefined,
    args: readonly Arg[],
    buffers: boolean | undefined,
    timeout?: number,
  ) => Promise<unknown>,
): Connection['send'] {
  return async (key, args, buffers) => {
    // Sent while the client is down, or again after a failure: within DOWN_WAIT_MS.
    let deadline = client.isReady ? undefined : Date.now() + DOWN_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const timeout = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
        return normalise(args[0], await send(key, args, buffers, timeout));
      } catch (err) {
        if (attempt >= RESENDS || !transient(err, client)) throw err;
        deadline ??= Date.now() + DOWN_WAIT_MS;
        if (Date.now() >= deadline) {
          const why = `Redis did not answer within ${DOWN_WAIT_MS} ms while the client reconnected`;
          throw Object.assign(new Error(`${why} (${err instanceof Error ? err.message || classNames(err)[0] : err})`), {
            cause: err,
          });
        }
        if (attempt > 0) {
          const pause = Math.min(RESEND_MAX_MS, 25 * 2 ** attempt);
          await new Promise((resolve) => setTimeout(resolve, pause).unref());
        }
      }
    }
  };
}

/** The names of an error's classes, its own first. */
function classNames(err: unknown): string[] {
  const names: string[] = [];
  for (let p = err instanceof Error ? Object.getPrototypeOf(err) : null; p; p = Object.getPrototypeOf(p)) {
    if (typeof p.constructor?.name === 'string') names.push(p.constructor.name);
  }
  return names;
}

function isReply(err: unknown): boolean {
  // node-redis's error replies (SimpleError, BlobError) extend its ErrorReply.
  return classNames(err).includes('ErrorReply');
}

/** node-redis's errors for a connection that failed under a command, or that is not up yet. */
const CONNECTION_FAILURES = new Set([
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'ClientOfflineError',
  // A command that waited too long (while a cluster failed over, say).
  'TimeoutError',
  // A cluster's node client replaced while it looked the slots up again.
  'DisconnectsClientError',
]);

/**
 * A connection of the package's own, made from `source` (a client of the caller's, or of a
 * cluster's node) with its options, connected at once. Commands wait for the connection.
 */
function ownConnection(
  source: Promise<Client>,
  overrides: (client: Client) => object | undefined,
  unblockVia: () => Promise<Client>,
): BlockingConnection {
  let closed = false;
  let own: Client | undefined;
  let closeNow!: (err: Error) => void;
  // A close does not wait for the connection: node-redis may retry connecting for ever.
  const closing = new Promise<never>((_, reject) => {
    closeNow = reject;
  });
  closing.catch(() => {});
  // Refused before it was ready, again and again (see refusals.ts): what waits fails, saying why.
  let refused: Error | undefined;
  let caller: Client | undefined;
  const refusals = new Refusals(
    () => caller?.isReady === true,
    (err) => {
      refused = err;
      closed = true;
      closeNow(err);
      own?.destroy();
    },
  );
  const connected = source.then((c) => {
    caller = c;
    own = c.duplicate(overrides(c));
    own.on('connect', () => refusals.connected());
    own.on('ready', () => refusals.ready());
    // node-redis reports a failed connection by an error, and connects again (or not) after it.
    own.on('error', (err: unknown) => {
      refusals.failed(err as Error);
      refusals.closed();
    });
    if (closed) return own;
    const conn = own;
    return conn.connect().then(() => {
      if (closed) conn.destroy();
      return conn;
    });
  });
  const made = Promise.race([connected, closing]);
  made.catch(() => {});
  const send = made.then(sender);
  send.catch(() => {});
  return {
    send: async (key, args, buffers) => {
      const s = await send;
      if (closed) throw refused ?? new Error('Connection is closed');
      return s(key, args, buffers);
    },
    unblock: async (id) => Number(await (await unblockVia()).sendCommand(['CLIENT', 'UNBLOCK', String(id)])),
    close: () => {
      closed = true;
      closeNow(new Error('Connection is closed'));
      // Connected, or still connecting (or reconnecting): either way it goes now.
      if (own?.isOpen) own.destroy();
    },
  };
}

/**
 * A {@link KeyWatch} on a connection of its own to the server of `source`: RESP2, where node-redis
 * hands the invalidation messages of CLIENT TRACKING to a subscriber as arrays of keys.
 */
function keyWatch(
  source: Promise<Client>,
  prefixes: readonly string[],
  onKeys: ChangedKeys,
  onEnd: () => void,
): KeyWatch {
  let closed = false;
  let own: Client | undefined;
  const ready = source.then(async (c) => {
    // Without what RESP2 refuses (maintenance notifications, client-side caching), whatever the
    // caller's client has.
    const conn = c.duplicate({
      socket: { ...c.options?.socket, reconnectStrategy: false },
      RESP: 2,
      maintNotifications: 'disabled',
      clientSideCache: undefined,
      emitInvalidate: undefined,
    });
    own = conn;
    // Without reconnection, a connection that failed is closed: reported by an error, not 'end'.
    let ended = false;
    const end = () => {
      if (ended || closed || conn.isOpen) return;
      ended = true;
      onEnd();
    };
    conn.on('error', end);
    conn.on('end', end);
    await conn.connect();
    if (closed) throw new Error('Connection is closed');
    const id = await conn.sendCommand(['CLIENT', 'ID']);
    await conn.sendCommand(strings(trackingArgs(Number(id), prefixes)));
    await conn.subscribe(INVALIDATE_CHANNEL, (message) => {
      onKeys(Array.isArray(message) ? message.map(String) : null);
    });
  });
  ready.catch(() => {});
  return {
    ready,
    close: () => {
      closed = true;
      if (own?.isOpen) own.destroy();
      else
        ready.then(
          () => own?.destroy(),
          () => own?.isOpen && own.destroy(),
        );
    },
  };
}

/** @internal */
export function nodeRedisPort(value: NodeRedisLikeClient): RedisPort {
  if (isCluster(value)) return clusterPort(value);
  const client = value as unknown as Client;
  const send = sender(client);
  const text = viewer(client)(false, undefined);
  return {
    library: 'node-redis',
    cluster: false,
    send,
    async batch(_key, commands) {
      // Sent in one turn: node-redis writes them together, in order, on its one connection.
      const sent = commands.map((c) => text.sendCommand(strings(c)));
      return settle(sent, commands);
    },
    openBlocking() {
      return ownConnection(
        Promise.resolve(client),
        () => undefined,
        async () => client,
      );
    },
    nodeOf: () => undefined,
    openKeyWatch: () => undefined,
    refreshSlots() {},
    async primaries() {
      return [{ send }];
    },
    state: () => state(client),
    closed: () => !client.isOpen,
    onClosed: (listener) => onceClosed(client, 'end', () => !client.isOpen, listener),
    onceReady: (listener) => onceReady(client, listener),
    isReplyError: isReply,
    isTransient: (err) => transient(err, client),
  };
}

/**
 * Have a node-redis cluster read its slots again (`_slots.rediscover()`, what it runs itself on
 * MOVED; not in its typed API, so looked for). It may reject (no node answers): the caller decides.
 * It also opens a connection to ask, and clears a client-side cache: asked only when needed.
 */
async function rediscover(cluster: ClusterClient): Promise<void> {
  const slots = (cluster as unknown as { _slots?: { rediscover?: () => Promise<void> } })._slots;
  if (typeof slots?.rediscover === 'function') await slots.rediscover();
}

function clusterPort(cluster: ClusterClient): RedisPort {
  const view = viewer(cluster);
  const text = view(false, undefined);
  const send = resending(cluster, (key, args, buffers, timeout) =>
    view(buffers, timeout).sendCommand(key, false, strings(args)),
  );
  return {
    library: 'node-redis',
    cluster: true,
    send,
    async batch(key, commands) {
      // In one turn on the client of the node the slot map names for `key`, not through the
      // cluster client: that one follows a redirection (a slot moved) by sending the redirected
      // command again to the new node, while the keyless WAIT of the batch has answered from the
      // old node, which never saw it. Here the whole batch goes to the node a redirection names.
      if (!cluster.isReady) await send(undefined, ['PING']);
      const slot = hashSlot(key);
      const master = cluster.slots[slot]?.master;
      if (master === undefined) throw noPrimary(slot);
      const node = (await cluster.nodeClient(master)).withTypeMapping(TEXT);
      const replies = await settle(
        commands.map((c) => node.sendCommand(strings(c))),
        commands,
      );
      // Redirected, nothing of it ran: the batch goes once to the node named, the slot having
      // moved (the slots are read again for the next ones) or being migrated with its keys gone
      // (each command after an ASKING, which covers the next command only). That node's WAIT
      // counts its own replicas. Redirected again, the caller sends it again later.
      const to = redirection(replies);
      if (to === undefined) return replies;
      if (!to.ask) await rediscover(cluster).catch(() => {});
      const target = cluster.masters.find((m) => `${m.host}:${m.port}` === to.node);
      if (target === undefined) return replies;
      const there = (await cluster.nodeClient(target)).withTypeMapping(TEXT);
      return settle(
        commands.map((c) => {
          if (to.ask) there.sendCommand(['ASKING']).catch(() => {});
          return there.sendCommand(strings(c));
        }),
        commands,
      );
    },
    openBlocking(slot) {
      const master = cluster.slots[slot ?? 0]?.master;
      if (master === undefined) return undefined;
      const node = cluster.nodeClient(master);
      // A plain connection to the node: it does not follow the slot by itself (no reconnection);
      // the owner asks the cluster where the slot went and connects there.
      return ownConnection(
        node,
        (c) => ({ socket: { ...c.options?.socket, reconnectStrategy: false } }),
        () => node,
      );
    },
    nodeOf(slot) {
      const master = cluster.slots[slot]?.master;
      return master === undefined ? undefined : `${master.host}:${master.port}`;
    },
    openKeyWatch(slot, prefixes, onKeys, onEnd) {
      const master = cluster.slots[slot]?.master;
      return master === undefined ? undefined : keyWatch(cluster.nodeClient(master), prefixes, onKeys, onEnd);
    },
    refreshSlots(key) {
      // A command for the key through the cluster client: a MOVED reply makes it look up the slots.
      text.sendCommand(key, true, ['EXISTS', key]).catch(() => {});
    },
    async primaries(refresh) {
      // A cluster still connecting knows no primary yet (a listing found nothing): a command
      // through it waits until it is ready, as every command of the adapter does.
      if (!cluster.isReady) await send(undefined, ['PING']);
      // node-redis reads the cluster's slots again only when a command meets MOVED or a lost
      // node: after a failover or a resharding its map may still name the old primaries. Read
      // again when asked (a listing found the map stale); a failure leaves the map as it was.
      if (refresh) await rediscover(cluster).catch(() => {});
      // The primary of every slot: a slot without one (a failover under way) is an error, never a
      // shard left out.
      const serving = new Map<string, Node>();
      let missing = 0;
      for (let slot = 0; slot < SLOTS; slot++) {
        const master = cluster.slots[slot]?.master;
        if (master === undefined) missing++;
        else serving.set(`${master.host}:${master.port}`, master);
      }
      if (missing > 0) throw new Error(`no primary of the cluster is known for ${missing} of its ${SLOTS} slots`);
      const nodes = await Promise.all([...serving.values()].map((m) => cluster.nodeClient(m)));
      return nodes.map((node) => ({ send: sender(node) }));
    },
    state: () => state(cluster),
    closed: () => !cluster.isOpen,
    // A node-redis cluster says `disconnect` when it is closed (close(), destroy()).
    onClosed: (listener) => onceClosed(cluster, 'disconnect', () => !cluster.isOpen, listener),
    onceReady: () => () => {},
    isReplyError: isReply,
    isTransient: (err) =>
      transient(err, cluster) ||
      // A batch sent to the node that held a slot which has moved, or is moving (see batch).
      (cluster.isOpen && slotMoving(err)),
  };
}

async function settle(sent: Promise<unknown>[], commands: readonly (readonly Arg[])[]): Promise<Settled[]> {
  const outcomes = await Promise.allSettled(sent);
  return outcomes.map((o, i) =>
    o.status === 'fulfilled' ? [null, normalise(commands[i]![0], o.value)] : [o.reason as Error, undefined],
  );
}

function state(client: { readonly isOpen: boolean; readonly isReady: boolean }): 'ready' | 'connecting' | 'down' {
  if (client.isReady) return 'ready';
  return client.isOpen ? 'connecting' : 'down';
}

/**
 * A failure of the connection under the command (the socket's own error, ECONNRESET and the like,
 * or node-redis's "Socket closed unexpectedly") while the client stays open: it reconnects, and a
 * command sent again goes out on the new connection. Or a cluster that ran out of redirections
 * while a replica took over. Nothing else: not an error reply, not a closed client, not an error
 * of the package's own.
 */
function transient(err: unknown, client: { readonly isOpen: boolean }): boolean {
  if (!(err instanceof Error)) return false;
  if (/^(Too many Cluster redirections|All the root nodes are unavailable)/.test(err.message)) return true;
  const socket = typeof (err as { syscall?: unknown }).syscall === 'string';
  return client.isOpen && (socket || classNames(err).some((name) => CONNECTION_FAILURES.has(name)));
}
