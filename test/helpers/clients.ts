/**
 * ioredis clients for tests, connected by default to the shared server of the run.
 *
 *   import { afterAll } from 'vitest';
 *   import { closeAll, connect, uniqueKey } from './helpers/clients.js';
 *   afterAll(closeAll);
 *   const redis = connect();
 *   const key = uniqueKey('roundtrip');
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { expect, inject } from 'vitest';

const clients = new Set<Redis | Cluster>();

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

function ended(client: Redis | Cluster): Promise<void> {
  return new Promise((resolve) => {
    if (client.status === 'end') resolve();
    else client.once('end', () => resolve());
  });
}

/**
 * Disconnect every client made by {@link connect} (QUIT when connected, else a hard disconnect)
 * and wait until each has closed its socket. Call it in `afterAll`.
 */
export async function closeAll(): Promise<void> {
  const all = [...clients];
  clients.clear();
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

// One random tag per test file (each file gets its own module instance) ...
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
