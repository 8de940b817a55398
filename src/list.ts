/**
 * Listing stored files: SCAN over the metadata keys, never KEYS, so that it stays cheap on a
 * keyspace of millions of keys and never blocks the server.
 * @module
 */

import { ErrorCodes, RedisFileError, wrapRedisError } from './errors.js';
import { type FileStat, serverMs, storedSize, toFileStat } from './file-stat.js';
import {
  decodeMetaKey,
  fileKeys,
  globMatcher,
  isMetaProblem,
  type MetaRecord,
  parseMeta,
  State,
  scanPattern,
} from './format.js';
import { checkClient, failedIteration, type ListOptions, resolveListOptions } from './options.js';
import { SLOTS } from './redis/limits.js';
import { type Connection, portOf, type RedisClient, type RedisPort, toRecord } from './redis/port.js';

/**
 * Iterate over the files stored under the prefix whose keys match `match` (a Redis glob: `*`, `?`,
 * `[abc]`, `\` to escape), with what {@link stat} tells about each. Files in a format this version
 * cannot read are skipped.
 *
 * Like SCAN, it sees every file that exists for the whole iteration; one created or removed
 * meanwhile may or may not be seen, and in rare cases (while Redis resizes its tables) a file may
 * be yielded twice. On a cluster every master is scanned: the master of every slot, as the cluster
 * tells it when the listing starts; while a slot has none (a failover under way), the first step
 * rejects with `ERR_REDIS_FILE_REDIS` rather than leaving its files out. So does a client of one
 * server that is a node of a Redis Cluster (`INFO cluster`): it would see that node's files only.
 * Likewise while slots move between nodes (a resharding, a failover): a listing that starts while a
 * slot is being migrated rejects at its first step, and one during which slots moved rejects at its
 * last (after the files it found: they may miss some, or repeat some). A user whose ACL denies
 * `CLUSTER NODES` is not checked.
 *
 * The arguments are checked at the call, before any I/O, but a bad one never throws there: the
 * first step of the iteration (the first `next()`, so the `for await`) rejects with it, as with any
 * other failure of the listing.
 *
 * @throws TypeError / RangeError (as the rejection of the first step) for bad arguments
 * @example
 * ```ts
 * for await (const file of list(redis, { match: 'logs/2026-11-*' })) console.log(file.key, file.size);
 * ```
 */
export function list(client: RedisClient, options?: ListOptions): AsyncIterableIterator<FileStat> {
  let opts: ReturnType<typeof resolveListOptions>;
  try {
    checkClient(client);
    opts = resolveListOptions(options);
  } catch (err) {
    return failedIteration(err);
  }
  return scanFiles(portOf(client), opts.prefix, opts.match, opts.count);
}

async function* scanFiles(
  client: RedisPort,
  prefix: string,
  match: string,
  count: number,
): AsyncIterableIterator<FileStat> {
  const matches = globMatcher(match);
  const pattern = scanPattern(prefix, match);
  let nodes: Awaited<ReturnType<RedisPort['primaries']>>;
  try {
    nodes = await client.primaries();
    if (!client.cluster && (await clusterNode(client, nodes[0]!))) {
      throw new RedisFileError(
        ErrorCodes.REDIS,
        'listing files: the client is connected to one node of a Redis Cluster, which holds only the files of its slots: list them with a cluster client',
      );
    }
  } catch (err) {
    throw wrapRedisError(err, match, 'listing files');
  }
  // SCAN holds its promise node by node: a file whose slot moves from a node not yet scanned to
  // one already scanned is never seen (and one moving the other way is seen twice). The slots
  // must stay where they are, and none be on the move, from the listing's start to its end.
  let layout = client.cluster ? await slotLayout(client, nodes, match) : undefined;
  // The client's map of the cluster may be stale (a failover it was not told of, a resharding):
  // its primaries do not hold every slot. It reads the map again, once.
  if (layout !== undefined && !layout.migrating && layout.slots !== SLOTS) {
    try {
      nodes = await client.primaries(true);
    } catch (err) {
      throw wrapRedisError(err, match, 'listing files');
    }
    layout = await slotLayout(client, nodes, match);
  }
  if (layout?.migrating) throw slotsMoving('a slot of the cluster is being migrated to another node (resharding)');
  // The primaries asked for hold every slot: none moved to a node not among them meanwhile.
  if (layout !== undefined && layout.slots !== SLOTS) {
    throw slotsMoving('slots of the cluster moved to other nodes as the listing started (a resharding or a failover)');
  }
  for (const node of nodes) {
    let cursor = '0';
    do {
      let keys: string[];
      try {
        [cursor, keys] = (await node.send(undefined, [
          'SCAN',
          cursor,
          'MATCH',
          pattern,
          'COUNT',
          count,
          'TYPE',
          'hash',
        ])) as [string, string[]];
      } catch (err) {
        throw wrapRedisError(err, match, 'listing files');
      }
      const found = keys.flatMap((redisKey) => {
        const key = decodeMetaKey(prefix, redisKey);
        return key !== undefined && matches(key) ? [key] : [];
      });
      // One round trip per batch: the metadata and TTL of every file SCAN returned, sent at once.
      const asked = found.map((key) => {
        const meta = fileKeys(prefix, key).meta;
        const both = Promise.all([client.send(meta, ['HGETALL', meta]), client.send(meta, ['TTL', meta])]);
        return both.catch((err: unknown) => {
          throw wrapRedisError(err, key, 'listing files');
        });
      });
      for (const a of asked) a.catch(() => {});
      let time: (string | number)[] = [0, 0];
      try {
        if (found.length > 0) time = (await node.send(undefined, ['TIME'])) as string[];
      } catch (err) {
        throw wrapRedisError(err, match, 'listing files');
      }
      const now = serverMs(time);
      const files: { key: string; meta: MetaRecord; ttl: number }[] = [];
      for (let i = 0; i < found.length; i++) {
        const [raw, ttl] = await asked[i]!;
        const meta = parseMeta(toRecord(raw));
        // Removed since SCAN saw it, or in a format this version does not read.
        if (meta === undefined || isMetaProblem(meta)) continue;
        files.push({ key: found[i]!, meta, ttl: Number(ttl) });
      }
      // A file being written: what is stored so far, as stat() says (its hash has the size as of
      // the last heartbeat). Asked for together, one round trip for the batch.
      const sizes = await Promise.all(
        files.map(({ key, meta }) =>
          meta.state === State.writing
            ? storedSize(client, fileKeys(prefix, key), meta).catch((err: unknown) => {
                throw wrapRedisError(err, key, 'listing files');
              })
            : meta.size,
        ),
      );
      for (const [i, { key, meta, ttl }] of files.entries())
        yield toFileStat(key, meta, ttl, now, sizes[i] ?? meta.size);
    } while (cursor !== '0');
  }
  if (layout !== undefined && (await slotLayout(client, nodes, match))?.lines !== layout.lines) {
    throw slotsMoving('slots of the cluster moved to other nodes while it ran (a resharding or a failover)');
  }
}

/** Clients whose user may not run `CLUSTER NODES` (ACL): their listings are not checked. */
const layoutRefused = new WeakSet<RedisPort>();

/**
 * Where the slots are, from each primary's own line of `CLUSTER NODES`: its id, config epoch and
 * slots, with those it is migrating or importing (`[slot->-id]`, `[slot-<-id]`), one line each
 * (`lines`, compared at a listing's start and end); how many slots they serve, and whether one is
 * on the move.
 */
interface SlotLayout {
  readonly lines: string;
  readonly slots: number;
  readonly migrating: boolean;
}

/**
 * The {@link SlotLayout} of the primaries `nodes`. Undefined for a user whose ACL denies the
 * command (asked once per client): such a listing is not checked.
 */
async function slotLayout(
  client: RedisPort,
  nodes: readonly Connection[],
  match: string,
): Promise<SlotLayout | undefined> {
  if (layoutRefused.has(client)) return undefined;
  try {
    const own = await Promise.all(
      nodes.map(async (node) => {
        const text = String(await node.send(undefined, ['CLUSTER', 'NODES']));
        const line = text.split('\n').find((l) => l.split(' ')[2]?.split(',').includes('myself')) ?? '';
        // Its id, config epoch (a node that takes a slot over bumps it: a slot that moved away and
        // back is told by it) and slots.
        const fields = line.trim().split(' ');
        return [fields[0], fields[6], ...fields.slice(8)];
      }),
    );
    let slots = 0;
    let migrating = false;
    for (const token of own.flatMap((fields) => fields.slice(2))) {
      const range = /^(\d+)(?:-(\d+))?$/.exec(token ?? '');
      if (range) slots += range[2] === undefined ? 1 : Number(range[2]) - Number(range[1]) + 1;
      else migrating = true;
    }
    return {
      lines: own
        .map((fields) => fields.join(' '))
        .sort()
        .join('\n'),
      slots,
      migrating,
    };
  } catch (err) {
    if (client.isReplyError(err) && /^NOPERM\b/.test((err as Error).message)) {
      layoutRefused.add(client);
      return undefined;
    }
    throw wrapRedisError(err, match, 'listing files');
  }
}

function slotsMoving(why: string): RedisFileError {
  return new RedisFileError(
    ErrorCodes.REDIS,
    `listing files: ${why}, so a listing may leave files out or list some twice: list again once the slots have moved`,
  );
}

/** What {@link isClusterNode} found for each client: its server does not change into another. */
const clusterNodes = new WeakMap<RedisPort, Promise<boolean>>();

/** {@link isClusterNode}, asked once per client (again after a failure to ask). */
function clusterNode(client: RedisPort, node: Connection): Promise<boolean> {
  let found = clusterNodes.get(client);
  if (found === undefined) {
    found = isClusterNode(client, node);
    clusterNodes.set(client, found);
    found.catch(() => clusterNodes.delete(client));
  }
  return found;
}

/**
 * Whether the server behind a client of one server is a node of a Redis Cluster of several shards
 * (`INFO cluster`, then `CLUSTER INFO`): its SCAN would see the keys of its own slots only. A
 * cluster of one shard holds every key on each node. A user whose ACL denies INFO is not asked;
 * one denied CLUSTER INFO on a cluster node is refused, as a cluster of several shards.
 */
async function isClusterNode(client: RedisPort, node: Connection): Promise<boolean> {
  const asked = async (args: string[]): Promise<string | undefined> => {
    try {
      return String(await node.send(undefined, args));
    } catch (err) {
      if (client.isReplyError(err)) return undefined;
      throw err;
    }
  };
  if (!/^cluster_enabled:1\s*$/m.test((await asked(['INFO', 'cluster'])) ?? '')) return false;
  const shards = /^cluster_size:(\d+)\s*$/m.exec((await asked(['CLUSTER', 'INFO'])) ?? '');
  return shards === null || Number(shards[1]) > 1;
}
