/**
 * `redis-file`: the connection to Redis: the options that say where it is, connecting (one server
 * or a cluster) with a clear error when it cannot be reached, what a command says while the
 * connection is lost and when it gives up (--redis-timeout), and disconnecting.
 * @internal
 * @module
 */

import type { Cluster, Redis } from 'ioredis';
import { ConnectError, ConnectionLost, Interrupted, UsageError } from './errors.js';
import { safeUrl } from './format.js';
import { warn } from './output.js';
import { interrupt, interrupted } from './stop.js';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_PREFIX = 'rfs:';
/** How long Redis may stay unreachable while a command runs before it fails (--redis-timeout), in seconds. */
export const DEFAULT_REDIS_TIMEOUT = 20;
/** The longest --redis-timeout, in seconds: a timer holds at most 2^31 - 1 ms (about 24.8 days). */
export const MAX_REDIS_TIMEOUT = Math.floor((2 ** 31 - 1) / 1000);
/** How long the connection is lost before a line says so, and how often the line comes again. */
const LOST_FIRST_LINE_MS = 1000;
const LOST_LINE_EVERY_MS = 5000;
/** How long connecting may take, up to Redis's first answers (ioredis's own bound stops at TCP). */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * How long a command may go unanswered, for a --redis-timeout of `seconds`: a server that keeps the
 * connection open and answers nothing (stopped, hung) is as unreachable as one that dropped it.
 * Twice the timeout and 5 s more, because on a slow link an answer may wait behind the read-ahead
 * and the writes in flight (several MiB) without anything being wrong.
 */
function commandTimeout(seconds: number): number {
  return 2 * seconds * 1000 + 5000;
}

/** Rejects after {@link CONNECT_TIMEOUT_MS}; `stop` clears the timer. */
function connectDeadline(): { expired: Promise<never>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s of connecting`)),
      CONNECT_TIMEOUT_MS,
    );
  });
  expired.catch(() => {});
  return { expired, stop: () => clearTimeout(timer) };
}

/** The options every command takes (before or after its name). */
export interface GlobalOptions {
  /** One URL, or the seeds of a cluster. */
  url: string[];
  /** Connect as a cluster client even with one URL. */
  cluster?: boolean;
  prefix: string;
  /** Seconds Redis may stay unreachable once connected before the command fails. */
  redisTimeout: number;
}

/** The client a command works with: one Redis, or a cluster. */
export type Client = Redis | Cluster;

function checkUrl(url: string): void {
  if (/^rediss?:\/\/./i.test(url) || url.startsWith('/')) {
    try {
      // The path names a database: a number, or nothing.
      if (url.startsWith('/') || /^\/?(\d+)?$/.test(new URL(url).pathname)) return;
    } catch {
      // fall through
    }
  }
  throw new UsageError(
    `--url / REDIS_URL: expected redis://[[user]:password@]host[:port][/db], rediss://… (TLS) or the path of a Unix socket, got ${JSON.stringify(safeUrl(url))}`,
  );
}

/** Where Redis is, for messages: host:port (or the socket's path), without user or password. */
export function address(g: GlobalOptions): string {
  return g.url.map((url) => (url.startsWith('/') ? url : new URL(url).host)).join(', ');
}

/**
 * The client library of the command-line tool: ioredis, or iovalkey (its fork, with the same API)
 * when only that one is installed. Both are optional peers of the package: a project that uses
 * node-redis has neither, and the tool then says what to install.
 */
async function clientLibrary(): Promise<Pick<typeof import('ioredis'), 'Redis' | 'Cluster'>> {
  try {
    return await import('ioredis');
  } catch (first) {
    try {
      return (await import('iovalkey' as string)) as Pick<typeof import('ioredis'), 'Redis' | 'Cluster'>;
    } catch {
      throw new ConnectError(
        `the command connects with ioredis or iovalkey, and neither is installed beside redis-file-stream: npm install ioredis (${(first as Error).message.split('\n')[0]})`,
      );
    }
  }
}

/**
 * Connect, failing at once (not after retries) when Redis cannot be reached at all; once
 * connected, ioredis reconnects as usual and the streams carry on across dropped connections,
 * for as long as {@link watchConnection} lets them.
 * Several URLs, or `--cluster`, make a cluster client with those URLs as seeds.
 */
export async function connect(g: GlobalOptions): Promise<{ client: Client; lastError: () => Error | undefined }> {
  for (const url of g.url) checkUrl(url);
  if (g.cluster || g.url.length > 1) return connectCluster(g.url, g.redisTimeout);
  const url = g.url[0]!;
  // Loaded here, not at the top: --help and usage errors need no Redis client and answer faster.
  const { Redis } = await clientLibrary();
  // No retries for the first connection: a failure ends the client at once, with no reconnect
  // timer left (and no disconnect() needed, which would arm a 2 s timer of ioredis's own).
  // A command waits for a lost connection to come back for as long as --redis-timeout says,
  // not for a number of reconnection attempts.
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: commandTimeout(g.redisTimeout),
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: null,
  });
  const reconnect = redis.options.retryStrategy;
  redis.options.retryStrategy = () => null;
  const lastError = watchErrors(redis);
  const deadline = connectDeadline();
  try {
    await Promise.race([redis.connect(), interrupted, deadline.expired]);
  } catch (err) {
    if (redis.status !== 'end') redis.disconnect();
    throw connectError(err, lastError(), safeUrl(url));
  } finally {
    deadline.stop();
  }
  // ioredis selects the URL's database as it connects, and only reports a refusal (a number past
  // `databases`) as an 'error' event: the commands would go to database 0. Selected again here,
  // where a refusal fails the command.
  const db = redis.options.db ?? 0;
  if (db !== 0) {
    try {
      await redis.select(db);
    } catch (err) {
      redis.disconnect();
      throw connectError(err, undefined, safeUrl(url));
    }
  }
  // Connected: from now on a dropped connection is reconnected as ioredis does by default (the
  // blocking connections of readers, duplicated from this client, inherit it).
  redis.options.retryStrategy = reconnect;
  return { client: redis, lastError };
}

/**
 * A cluster client with every URL as a seed. User, password and TLS come from the first URL and
 * apply to every node the cluster names (they all share them in a cluster).
 */
async function connectCluster(
  urls: string[],
  redisTimeout: number,
): Promise<{ client: Cluster; lastError: () => Error | undefined }> {
  if (urls.some((url) => url.startsWith('/')))
    throw new UsageError('--cluster: a cluster is reached over TCP, not a Unix socket');
  const { Cluster } = await clientLibrary();
  const first = new URL(urls[0]!);
  const seeds = urls.map((url) => {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) };
  });
  const cluster = new Cluster(seeds, {
    lazyConnect: true,
    // No retries for the first connection, as for one server.
    clusterRetryStrategy: () => null,
    redisOptions: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: commandTimeout(redisTimeout),
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  const lastError = watchErrors(cluster);
  const deadline = connectDeadline();
  try {
    await Promise.race([cluster.connect(), interrupted, deadline.expired]);
  } catch (err) {
    cluster.disconnect();
    throw connectError(err, lastError(), urls.map(safeUrl).join(', '));
  } finally {
    deadline.stop();
  }
  // Connected: from now on ioredis follows slot moves and failovers as usual.
  cluster.options.clusterRetryStrategy = (times: number) => Math.min(100 + times * 2, 2000);
  return { client: cluster, lastError };
}

/** Commands report their own failures; without a listener ioredis would also print them. */
function watchErrors(client: Client): () => Error | undefined {
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  return () => lastError;
}

function connectError(err: unknown, lastError: Error | undefined, where: string): Error {
  if (err instanceof Interrupted) return err;
  const why = lastError ?? (err as Error);
  // ioredis's "Failed to refresh slots cache." keeps what the node said in `lastNodeError`.
  const node = (why as Error & { lastNodeError?: unknown }).lastNodeError;
  const said = node instanceof Error ? `${why.message} ${node.message}` : why.message;
  const hint = /NOAUTH|WRONGPASS/.test(said)
    ? ' (give the user and password in the URL: redis://user:password@host:port)'
    : /cluster support disabled/.test(said)
      ? ' (a single server, not a Redis Cluster: leave out --cluster and give one --url)'
      : '';
  return new ConnectError(`cannot connect to Redis at ${where}: ${said}${hint}`, { cause: why });
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

/**
 * While the command runs: once the connection has been lost for a second, say so on stderr (again
 * every few seconds, and once more when it is back); once it has been lost for `timeoutMs`, stop
 * the command with a {@link ConnectionLost} and close the client, which fails whatever still waits
 * on it. Returns the function that stops watching.
 */
export function watchConnection(
  client: Client,
  where: string,
  timeoutMs: number,
  lastError: () => Error | undefined,
): () => void {
  let lostAt: number | undefined;
  let said = false;
  let line: NodeJS.Timeout | undefined;
  let giveUp: NodeJS.Timeout | undefined;
  const clear = (): void => {
    clearTimeout(line);
    clearTimeout(giveUp);
    lostAt = undefined;
    said = false;
  };
  const lost = (): void => {
    if (lostAt !== undefined || interrupt.signal.aborted) return;
    const since = Date.now();
    lostAt = since;
    const tell = (): void => {
      warn(`lost the connection to ${where}, retrying (${seconds(Date.now() - since)} so far)\u2026`);
      said = true;
      line = setTimeout(tell, LOST_LINE_EVERY_MS);
    };
    line = setTimeout(tell, LOST_FIRST_LINE_MS);
    giveUp = setTimeout(() => {
      clear();
      const why = lastError();
      const lost = `lost the connection to Redis at ${where} and could not reconnect within ${seconds(timeoutMs)}`;
      interrupt.abort(new ConnectionLost(`${lost} (--redis-timeout)${why ? `: ${why.message}` : ''}`, { cause: why }));
      client.disconnect();
    }, timeoutMs);
  };
  const back = (): void => {
    if (lostAt === undefined) return;
    if (said) warn(`reconnected to ${where} after ${seconds(Date.now() - lostAt)}`);
    clear();
  };
  client.on('close', lost);
  client.on('ready', back);
  return () => {
    clear();
    client.off('close', lost);
    client.off('ready', back);
  };
}

/**
 * How long a closing socket may wait for the server's side to close before it is destroyed (ioredis
 * waits 2 s): a server that has stopped answering never closes its side, and the command has ended.
 */
const DISCONNECT_TIMEOUT_MS = 200;

/** QUIT when connected (bounded), then close the socket: nothing may keep the process alive. */
export async function disconnect(redis: Client): Promise<void> {
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      redis.quit().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1000);
      }),
    ]);
    clearTimeout(timer);
  }
  redis.disconnect();
}
