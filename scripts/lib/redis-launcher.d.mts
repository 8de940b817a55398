/**
 * Private Redis servers for the tests, the benchmarks and the demo (redis-launcher.mjs).
 *
 * Every server listens on 127.0.0.1 only, on a free port, with its own temporary directory.
 * Nothing here ever talks to a server it did not start.
 *
 * Safety nets so that no server outlives the run:
 * - every live server is SIGKILLed (and its directory removed) when the Node process exits, and
 *   on SIGTERM / SIGINT / SIGHUP when nothing else in the process listens for that signal;
 * - when {@link RUN_DIR_ENV} is set (the vitest global setups set it), the servers' directories
 *   and pid files live under it, and {@link reapServers} kills any server still recorded there,
 *   even if the process that started it died hard.
 */

/** Environment variable naming the folder that holds this run's server directories. */
export declare const RUN_DIR_ENV = 'REDIS_FILE_STREAM_TEST_RUN_DIR';

/** Certificate files for a TLS server (PEM). */
export interface RedisTlsFiles {
  certFile: string;
  keyFile: string;
  /** CA that client certificates must be signed by. */
  caFile: string;
  /** `--tls-auth-clients`: whether clients must present a certificate. Default `'no'`. */
  authClients?: 'no' | 'yes' | 'optional';
}

export interface StartRedisOptions {
  /**
   * Extra `redis-server` arguments, appended after the defaults (so they win over them), e.g.
   * `['--appendonly', 'yes']`, `['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']`,
   * `['--aclfile', path]`.
   */
  args?: string[];
  /** Adds `--requirepass <password>` and puts the password in `url`. */
  password?: string;
  /** Port to listen on. Default: a free port from `pickPort`. */
  port?: number;
  /**
   * Picks the port of each start attempt (an attempt that loses its port to another process is
   * retried on a new one). Default {@link getFreePort}.
   */
  pickPort?: () => Promise<number>;
  /**
   * Serve TLS only, on a free `tlsPort`: the plain `port` is open for the readiness check alone
   * and closed (`CONFIG SET port 0`) before `startRedis` resolves, and again after `restart()`.
   */
  tls?: RedisTlsFiles;
  /** How many times to poll the server with PING before giving up. Default 400 (50 ms apart). */
  readyTries?: number;
  /** The redis-server binary. Default: `redis-server` from PATH. */
  bin?: string;
  /**
   * Start the server in a process group of its own, so that a Ctrl-C in the terminal reaches only
   * this process, which then stops the server in order. Default false.
   */
  detached?: boolean;
}

export interface RedisServer {
  readonly host: '127.0.0.1';
  /** The plain port (closed on a TLS server once it is up). */
  readonly port: number;
  /** The TLS port, with the `tls` option; undefined otherwise. */
  readonly tlsPort: number | undefined;
  /**
   * `redis://127.0.0.1:<port>` (with `:password@` when a password was given); with `tls`,
   * `rediss://127.0.0.1:<tlsPort>`.
   */
  readonly url: string;
  /** The server's working directory (RDB/AOF files). Removed by `stop()`. */
  readonly dir: string;
  /** The full argument list the server was started with. */
  readonly args: readonly string[];
  /** PID of the current process, or undefined while the server is down. */
  readonly pid: number | undefined;
  /** The server's own log output (stdout and stderr) since it was (re)started, the last 64 KiB. */
  log(): string;
  /** SIGTERM (graceful shutdown), wait for exit, then remove `dir`. Idempotent. */
  stop(): Promise<void>;
  /** Stop the process (SIGTERM) and start it again on the same port and dir with the same args. */
  restart(): Promise<void>;
  /**
   * SIGKILL the process (no shutdown, no final AOF/RDB write) and wait for it to exit. Keeps
   * `dir`, so `restart()` works.
   */
  kill(): Promise<void>;
}

/**
 * Start a private redis-server on a free 127.0.0.1 port and wait until it answers PING (and is the
 * process we started). Always `await server.stop()` when done. The error of a server that did not
 * come up names the command and holds the server's output.
 */
export declare function startRedis(opts?: StartRedisOptions): Promise<RedisServer>;

/** Ask the OS for a free TCP port on 127.0.0.1. */
export declare function getFreePort(): Promise<number>;

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
export declare function isPortFree(port: number): Promise<boolean>;

/**
 * Kill every server whose pid file is still under `dir` (a run dir), then remove `dir`; returns
 * how many were killed. Only processes whose command line is a redis-server are signalled, so a
 * recycled pid is safe. The vitest global teardowns' last safety net.
 */
export declare function reapServers(dir: string): number;

export interface StartClusterOptions {
  /** Number of primaries. Default 3. */
  masters?: number;
  /** Replicas per primary. Default 1. */
  replicas?: number;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  /**
   * `cluster-node-timeout` in ms: how long a node may be unreachable before it counts as failed
   * and a replica takes over. Default 1000, so failover tests take seconds, not minutes.
   */
  nodeTimeout?: number;
}

export interface RedisCluster {
  /** Every node, in the order they were given to `redis-cli --cluster create`. */
  readonly nodes: readonly RedisServer[];
  /** `host:port` of every node, as ioredis `Cluster` seeds. */
  readonly seeds: readonly { host: string; port: number }[];
  /** `redis://127.0.0.1:<port>` of every node. */
  readonly urls: readonly string[];
  /** The node serving `key`'s slot as primary now (asks the cluster). */
  masterOf(key: string): Promise<RedisServer>;
  /** The replicas of the primary serving `key`'s slot now. */
  replicasOf(key: string): Promise<RedisServer[]>;
  /** The nodes serving slots as primaries now, none of them failed. */
  primaries(): Promise<RedisServer[]>;
  /**
   * Wait until every running node reports `cluster_state:ok`, they agree on the primaries of all
   * slots, and every replica is in sync with its primary.
   */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Start a node that was killed again, as a new, empty node (its old cluster config removed, so
   * that it never claims its old slots without their data), and make it a replica of the primary
   * that serves `key` now. Resolves once it is in sync.
   */
  rejoinAsReplica(node: RedisServer, key: string): Promise<void>;
  /** Stop every node and remove its directory. */
  stop(): Promise<void>;
}

/**
 * Start a Redis Cluster of private nodes (each from {@link startRedis}, so the same safety nets
 * stop them) and wait until it is healthy. Always `await cluster.stop()` when done.
 */
export declare function startCluster(opts?: StartClusterOptions): Promise<RedisCluster>;
