/**
 * The adapter for ioredis and iovalkey (a fork of ioredis with the same API): `Redis` and
 * `Cluster`. Neither library is imported: the caller's client is used through its methods.
 * @internal
 * @module
 */

import type { Arg, BlockingConnection, Connection, IoredisLikeClient, RedisPort, Settled } from './port.js';

/** The members of an ioredis `Redis` or `Cluster` the adapter uses. */
interface Client {
  readonly status: string;
  readonly isCluster?: boolean;
  readonly options: { host?: string; port?: number };
  call(command: string, ...args: Arg[]): Promise<unknown>;
  callBuffer(command: string, ...args: Arg[]): Promise<unknown>;
  pipeline(commands: Arg[][]): { exec(): Promise<Settled[] | null> };
  duplicate(overrides?: object): Client;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface ClusterClient extends Client {
  readonly slots: (string[] | undefined)[];
  nodes(role: 'master'): Client[];
  refreshSlotsCache(): void;
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
    typeof v.pipeline === 'function'
  );
}

function sender(client: Client): Connection['send'] {
  return (_key, [command, ...args], buffers) =>
    buffers ? client.callBuffer(String(command), ...args) : client.call(String(command), ...args);
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
  return {
    library: 'ioredis',
    cluster,
    send: sender(client),
    async batch(_key, commands) {
      // A pipeline goes out on one connection; a cluster client sends a keyless command of it (WAIT)
      // to the node of the others.
      return (
        (await client.pipeline(commands.map(([name, ...args]) => [String(name).toLowerCase(), ...args])).exec()) ?? []
      );
    },
    openBlocking(slot) {
      let conn: Client;
      if (!cluster) conn = client.duplicate();
      else {
        const node = nodeAt((client as ClusterClient).slots[slot ?? 0]?.[0]);
        if (node === undefined) return undefined;
        // A plain connection to the node: it does not follow the slot by itself (no reconnection);
        // the owner asks the cluster where the slot went and connects there.
        conn = node.duplicate({ lazyConnect: false, readOnly: false, retryStrategy: () => null });
      }
      // A closed blocking connection rejects its pending command; its owner has moved on by then,
      // so the error event carries nothing the owner does not know.
      conn.on('error', () => {});
      const hostPort = `${conn.options.host}:${conn.options.port}`;
      return {
        send: sender(conn),
        unblock: async (id) => {
          const via = cluster ? nodeAt(hostPort) : client;
          if (via === undefined) throw new Error(`no connection to ${hostPort} to unblock a read`);
          return Number(await via.call('CLIENT', 'UNBLOCK', id));
        },
        close: () => conn.disconnect(),
      } satisfies BlockingConnection;
    },
    refreshSlots() {
      (client as ClusterClient).refreshSlotsCache();
    },
    async primaries() {
      return (cluster ? (client as ClusterClient).nodes('master') : [client]).map((node) => ({ send: sender(node) }));
    },
    state() {
      if (client.status === 'ready') return 'ready';
      return client.status === 'connecting' || client.status === 'connect' || client.status === 'wait'
        ? 'connecting'
        : 'down';
    },
    onceReady(listener) {
      client.once('ready', listener);
      return () => client.off('ready', listener);
    },
    isReplyError(err) {
      return err instanceof Error && err.name === 'ReplyError';
    },
    isTransient(err) {
      if (!(err instanceof Error)) return false;
      // A cluster node that held a slot is gone and no replica has taken over yet: the redirections
      // and slot refreshes ran out first.
      if (/^(Too many Cluster redirections|Failed to refresh slots cache)/.test(err.message)) return true;
      return (
        cluster &&
        client.status !== 'end' &&
        client.status !== 'close' &&
        /^(Command aborted due to connection close|Connection is closed)/.test(err.message)
      );
    },
  };
}
