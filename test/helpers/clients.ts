/**
 * Clients for tests, connected by default to the shared server of the run. The tests inspect Redis
 * with ioredis clients of their own; what they hand to the package is `subject(client)`: a client
 * of the library under test (env `RFS_CLIENT`: `ioredis`, the default, `node-redis` or `iovalkey`)
 * connected where the test's client is.
 *
 *   import { afterAll } from 'vitest';
 *   import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
 *   afterAll(closeAll);
 *   const redis = connect();
 *   const key = uniqueKey('roundtrip');
 *   await stat(subject(redis), key);
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, type ClusterOptions, Redis, type RedisOptions, ReplyError } from 'ioredis';
import type { RedisOptions as ValkeyRedisOptions } from 'iovalkey';
import { expect, inject } from 'vitest';
import type { RedisClient } from '../../src/index.js';

/** The part of the ioredis and iovalkey API that {@link closeAll} uses. */
interface IoClient {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(): void;
  once(event: 'end', listener: () => void): unknown;
}

/** A node-redis client or cluster, as {@link closeAll} sees it. */
interface NodeRedisClient {
  destroy(): void;
}

const clients = new Set<IoClient>();
const nodeRedisClients = new Set<NodeRedisClient>();

/** The URL of the shared redis-server that the global setup started for this run. */
export function sharedRedisUrl(): string {
  const url = inject('redisUrl');
  if (!url) throw new Error('no redisUrl was provided: run the tests through vitest with test/helpers/global-setup.ts');
  return url;
}

/**
 * A new ioredis client for `url` (default: the shared server), tracked so that
 * {@link closeAll} disconnects it.
 */
export function connect(url: string = sharedRedisUrl(), options: RedisOptions = {}): Redis {
  const client = new Redis(url, options);
  clients.add(client);
  // Errors also reach the command that failed; this only keeps an unhandled 'error'
  // event (e.g. while a test restarts a private server) from crashing the worker.
  client.on('error', () => {});
  client.once('end', () => clients.delete(client));
  return client;
}

/**
 * A client of the run's Redis, whatever its topology: a `Cluster` in the `cluster` project (the
 * test files that run on both topologies), else a `Redis` connected to the shared server.
 */
export function connectAny(options: RedisOptions = {}): Redis | Cluster {
  const seeds = clusterSeeds();
  if (!seeds) return connect(undefined, options);
  const client = new Cluster(seeds, { redisOptions: options });
  clients.add(client);
  client.on('error', () => {});
  client.once('end', () => clients.delete(client));
  // A node-redis cluster refuses commands until connected: its subject starts connecting now, and
  // each test waits for it (see the beforeEach below).
  if (subjectClientName() === 'node-redis') subject(client);
  return client;
}

/**
 * What a child process (test/fixtures/*.mjs) connects to: the shared server's URL, or in the
 * `cluster` project `cluster:` and the seeds' URLs separated by commas (see test/fixtures/client.mjs).
 */
export function redisUrlForProcesses(): string {
  const seeds = clusterSeeds();
  if (!seeds) return sharedRedisUrl();
  return `cluster:${seeds.map(({ host, port }) => `redis://${host}:${port}`).join(',')}`;
}

/** The shared cluster's seeds in the `cluster` project, else undefined. */
export function clusterSeeds(): { host: string; port: number }[] | undefined {
  return inject('clusterSeeds');
}

/** The libraries whose clients the package accepts, as `RFS_CLIENT` names them. */
export type ClientLibrary = 'ioredis' | 'node-redis' | 'iovalkey';

const LIBRARIES: readonly ClientLibrary[] = ['ioredis', 'node-redis', 'iovalkey'];

/** The library of the clients handed to the package in this run: env `RFS_CLIENT`, `ioredis` unless set. */
export function subjectClientName(): ClientLibrary {
  const name = process.env.RFS_CLIENT || 'ioredis';
  if (!(LIBRARIES as readonly string[]).includes(name)) {
    throw new Error(`RFS_CLIENT must be one of ${LIBRARIES.join(', ')}, got ${JSON.stringify(name)}`);
  }
  return name as ClientLibrary;
}

// Only the library under test is loaded besides ioredis (which the tests inspect Redis with): each
// takes a few hundred milliseconds to import, in every test file.
const iovalkey = subjectClientName() === 'iovalkey' ? await import('iovalkey') : undefined;
const nodeRedis = subjectClientName() === 'node-redis' ? await import('redis') : undefined;

/** A library that is loaded only when it is the one under test: `lib`, or a clear error. */
function loaded<T>(lib: T | undefined, name: ClientLibrary): T {
  if (lib === undefined)
    throw new Error(`${name} is loaded only when it is the library under test (RFS_CLIENT=${name})`);
  return lib;
}

/**
 * The class of an error reply (NOPERM, WRONGTYPE, …) in the library under test: what the package
 * keeps as the `cause` of the RedisFileError it wraps it in.
 */
export function replyErrorClass(): abstract new (...args: never[]) => Error {
  const library = subjectClientName();
  if (library === 'node-redis') return loaded(nodeRedis, library).ErrorReply;
  return library === 'iovalkey' ? loaded(iovalkey, library).ReplyError : ReplyError;
}

const subjects = new WeakMap<Redis | Cluster, RedisClient>();

/**
 * The client to hand to the package for the test's ioredis `client`: `client` itself when the run
 * tests ioredis, else a client of the library under test connected to the same server or cluster
 * (same seeds) with the same address, TLS, user, password, database and connection name. The same
 * `client` always gives the same subject; {@link closeAll} closes it. A subject given back is
 * returned as it is, so helpers that hand a client on may take either.
 */
export function subject(client: Redis | Cluster | RedisClient): RedisClient {
  if (!(client instanceof Redis || client instanceof Cluster)) return client as RedisClient;
  const library = subjectClientName();
  if (library === 'ioredis') return client as RedisClient;
  let made = subjects.get(client);
  if (made === undefined) {
    made = library === 'iovalkey' ? iovalkeyClient(client) : nodeRedisClient(client);
    subjects.set(client, made);
  }
  return made;
}

/**
 * A client of the library under test only (no ioredis connection beside it, so that the test counts
 * only the package's connections): `connect(url, options)` for ioredis, else that client's subject.
 */
export function connectSubject(url: string = sharedRedisUrl(), options: RedisOptions = {}): RedisClient {
  if (subjectClientName() === 'ioredis') return connect(url, options) as RedisClient;
  // Never connected: it only carries the options the subject is made from.
  return subject(new Redis(url, { ...options, lazyConnect: true }));
}

/** {@link connectSubject} for the run's topology, as {@link connectAny}. */
export function connectAnySubject(options: RedisOptions = {}): RedisClient {
  const seeds = clusterSeeds();
  if (!seeds) return connectSubject(undefined, options);
  if (subjectClientName() === 'ioredis') return connectAny(options) as RedisClient;
  return subject(new Cluster(seeds, { lazyConnect: true, redisOptions: options }));
}

/** {@link connectAnySubject}, connected (see {@link subjectConnected}). */
export async function readyAnySubject(options: RedisOptions = {}): Promise<RedisClient> {
  return subjectConnected(connectAnySubject(options));
}

/** The options of an ioredis connection that say where and as whom it connects. */
function identity(options: RedisOptions): RedisOptions {
  const { host, port, tls, username, password, db, connectionName } = options;
  return { host, port, tls, username, password, db, connectionName };
}

function clusterParts(cluster: Cluster): { seeds: { host: string; port: number }[]; redisOptions: RedisOptions } {
  // ioredis keeps its seeds private; they are the `startupNodes` it was made with.
  const seeds = (cluster as unknown as { startupNodes: { host: string; port: number }[] }).startupNodes;
  const options: ClusterOptions = cluster.options;
  return { seeds: seeds.map(({ host, port }) => ({ host, port })), redisOptions: options.redisOptions ?? {} };
}

function trackIo<T extends IoClient & { on(event: 'error', listener: () => void): unknown }>(client: T): T {
  clients.add(client);
  client.on('error', () => {});
  client.once('end', () => clients.delete(client));
  return client;
}

function iovalkeyClient(client: Redis | Cluster): RedisClient {
  if (client instanceof Cluster) {
    const { seeds, redisOptions } = clusterParts(client);
    const { Cluster: ValkeyCluster } = loaded(iovalkey, 'iovalkey');
    return trackIo(new ValkeyCluster(seeds, { redisOptions: valkeyOptions(redisOptions) })) as unknown as RedisClient;
  }
  const { Redis: ValkeyRedis } = loaded(iovalkey, 'iovalkey');
  return trackIo(new ValkeyRedis(valkeyOptions(client.options))) as unknown as RedisClient;
}

/**
 * iovalkey's options for ioredis's (the same API): where and as whom to connect, how commands
 * wait and retry while the connection is down, and how long a close waits for the server, which
 * fault tests set.
 */
function valkeyOptions(options: RedisOptions): ValkeyRedisOptions {
  const { maxRetriesPerRequest, enableOfflineQueue, retryStrategy, disconnectTimeout } = options;
  return defined({
    ...identity(options),
    maxRetriesPerRequest,
    enableOfflineQueue,
    retryStrategy,
    disconnectTimeout,
  }) as ValkeyRedisOptions;
}

/** node-redis's socket options for ioredis's address and TLS options. */
function socketOf(options: RedisOptions): Record<string, unknown> {
  const address = defined({ host: options.host, port: options.port });
  if (!options.tls) return address;
  return { ...address, tls: true, ...(options.tls as ConnectionOptions) };
}

/** node-redis's client options (user, password, database, name) for ioredis's. */
function nodeRedisOptions(options: RedisOptions): Record<string, unknown> {
  return defined({
    username: options.username || undefined,
    password: options.password || undefined,
    database: options.db || undefined,
    name: options.connectionName || undefined,
  });
}

function nodeRedisClient(client: Redis | Cluster): RedisClient {
  let made: {
    connect(): Promise<unknown>;
    destroy(): void;
    on(event: 'error', listener: () => void): unknown;
  };
  if (client instanceof Cluster) {
    const { seeds, redisOptions } = clusterParts(client);
    made = loaded(nodeRedis, 'node-redis').createCluster({
      rootNodes: seeds.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
      defaults: { ...nodeRedisOptions(redisOptions), socket: socketOf(identity(redisOptions)) },
    });
  } else {
    made = loaded(nodeRedis, 'node-redis').createClient({
      ...nodeRedisOptions(client.options),
      socket: socketOf(client.options),
    });
  }
  nodeRedisClients.add(made);
  // As for connect(): a failed connection also fails the commands sent on it.
  made.on('error', () => {});
  // Commands sent before the connection is open wait in node-redis's queue, so nothing waits here.
  const connected = made.connect();
  connected.catch(() => {});
  nodeRedisConnects.set(made, connected);
  pendingConnects.add(connected);
  const settled = (): void => void pendingConnects.delete(connected);
  connected.then(settled, settled);
  return made as unknown as RedisClient;
}

const nodeRedisConnects = new WeakMap<object, Promise<unknown>>();
const pendingConnects = new Set<Promise<unknown>>();

/**
 * Resolves once every node-redis client made so far has connected or failed to. A node-redis client
 * sent commands while connecting queues them, but a node-redis cluster fails them ("The client is
 * offline"), as documented: hand it over connected. test/helpers/setup.ts runs this before each
 * test, so the clients made before a test (at the top of a file, in beforeAll) are connected when
 * it starts; one made inside a test is awaited there (subjectConnected()).
 */
export async function pendingConnections(): Promise<void> {
  await Promise.allSettled([...pendingConnects]);
}

/**
 * Resolves once a node-redis subject has connected (a node-redis cluster refuses commands before);
 * at once for ioredis and iovalkey, whose clients queue commands while they connect.
 */
export async function subjectConnected(client: RedisClient): Promise<RedisClient> {
  await nodeRedisConnects.get(client);
  return client;
}

/**
 * Resolves once `client` (a subject, or an ioredis client) is connected to the server or to every
 * primary of a cluster: a cluster client of ioredis or iovalkey opens a node's connection when it
 * first sends it a command, so a test that counts connections warms it up first.
 */
export async function subjectReady(client: Redis | Cluster | RedisClient): Promise<void> {
  const connecting = nodeRedisConnects.get(client);
  if (connecting) {
    // node-redis connects to every primary of a cluster in connect().
    await connecting;
    return;
  }
  const io = client as unknown as Redis | Cluster;
  await io.ping();
  if ('nodes' in io) await Promise.all(io.nodes('master').map((node) => node.ping()));
}

/** `object` without its undefined fields. */
function defined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/**
 * The keys matching `pattern` on every primary: KEYS on a `Cluster` would ask one random node.
 */
export async function keysOf(client: Redis | Cluster, pattern: string): Promise<string[]> {
  if (client instanceof Cluster) {
    const all = await Promise.all(client.nodes('master').map((node) => node.keys(pattern)));
    return all.flat();
  }
  return client.keys(pattern);
}

/** Run `fn` on the server, or on every primary of a cluster. */
export async function onEveryNode<T>(client: Redis | Cluster, fn: (node: Redis) => Promise<T>): Promise<T[]> {
  return Promise.all((client instanceof Cluster ? client.nodes('master') : [client]).map(fn));
}

/** CLIENT LIST of the server, or of every node of a cluster, as one text. */
export async function clientList(client: Redis | Cluster): Promise<string> {
  const nodes = client instanceof Cluster ? client.nodes('all') : [client];
  const lists = await Promise.all(nodes.map((node) => node.client('LIST') as Promise<string>));
  return lists.map((list) => list.trim()).join('\n');
}

/**
 * How many connections named `name` (any name when undefined) are blocked in `command` (XREAD
 * unless told) on the server or on any node of a cluster: a follower waiting for bytes or for its
 * file, a receiver waiting for an announcement, a writer held back by a memory limit. A blocking
 * connection is a duplicate of the client given to the package, so it carries that client's name.
 */
export async function blockedIn(client: Redis | Cluster, name?: string, command = 'xread'): Promise<number> {
  const cmd = new RegExp(`\\bcmd=${command}\\b`);
  return (await clientList(client))
    .split('\n')
    .filter((line) => name === undefined || line.includes(` name=${name} `))
    .filter((line) => cmd.test(line) && /\bflags=\S*b/.test(line)).length;
}

/** A connection name (for `connectionName`) that no other test uses, to tell its connections apart. */
export function uniqueConnectionName(name = 'conn'): string {
  return uniqueKey(name).replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** Disconnect one client (a subject or any client made here) at once, whatever its library. */
export function disconnectSubject(client: Redis | Cluster | RedisClient): void {
  const nodeRedis = client as unknown as NodeRedisClient;
  if (nodeRedisClients.delete(nodeRedis)) {
    nodeRedis.destroy();
    return;
  }
  (client as unknown as IoClient).disconnect();
}

function ended(client: IoClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.status === 'end') resolve();
    else client.once('end', () => resolve());
  });
}

/**
 * Disconnect every client made by {@link connect}, {@link connectAny} and {@link subject} (QUIT when
 * connected, else a hard disconnect) and wait until each has closed its socket. Call it in `afterAll`.
 */
export async function closeAll(): Promise<void> {
  const all = [...clients];
  clients.clear();
  for (const client of nodeRedisClients) {
    try {
      client.destroy();
    } catch {
      // already closed
    }
  }
  nodeRedisClients.clear();
  await Promise.all(
    all.map(async (client) => {
      const done = ended(client);
      let quit = false;
      if (client.status === 'ready') {
        try {
          await client.quit();
          quit = true;
        } catch {
          // fall through to a hard disconnect
        }
      }
      if (!quit) client.disconnect();
      // ioredis leaves a client that was disconnected while waiting to reconnect in status
      // 'reconnecting' with no socket and no 'end' event: nothing is open, so do not wait for it.
      if (client.status === 'reconnecting') return;
      await done;
    }),
  );
}

// One random tag per module instance (per worker process: modules are not isolated per file) ...
const fileTag = randomBytes(4).toString('hex');
// ... and a counter per call, so two calls never return the same key.
let counter = 0;

function testFileName(): string {
  try {
    const path = expect.getState().testPath;
    if (path)
      return basename(path)
        .replace(/\.test\.[cm]?[jt]s$/, '')
        .replace(/[^A-Za-z0-9_.-]/g, '_');
  } catch {
    // not inside a test
  }
  return 'file';
}

/**
 * A Redis key (or key prefix) that no other test file or call uses, so test files can run in
 * parallel on the shared server: `test:<file>:<random>:<name>:<n>`.
 */
export function uniqueKey(name = 'key'): string {
  counter += 1;
  return `test:${testFileName()}:${fileTag}:${name}:${counter}`;
}
