/**
 * Blocking reads shared by every follower of one client object. Each follower (a reader at the
 * stored tail of a file being written, or one waiting for a file to be created) is a member of a
 * lane; a lane holds one blocking connection and runs one `XREAD COUNT c BLOCK ms STREAMS ...` over
 * the streams of all its members. On a single server a client has one lane per
 * {@link FOLLOWERS_PER_CONNECTION} followers. On a cluster, where XREAD refuses keys of different
 * hash slots, a primary's blocking lanes read the first slot that had followers there, on a plain
 * connection to that node (not a copy of the whole Cluster client); the followers of the node's
 * other slots are in its {@link WatchedLane}, woken by a key watch (CLIENT TRACKING) and read for
 * without blocking. A lane that met MOVED or lost its node asks the cluster where the slot is now
 * and connects there.
 *
 * - Backpressure per member: a member is read for only while it waits, or while it is parked right
 *   after a delivery (its next wait is then covered by the read already running). Entries that come
 *   for a parked member are kept for it (one batch at most) and the member leaves the reads until
 *   it asks again: a slow consumer holds back no one.
 * - Fairness: COUNT applies to each stream of one XREAD, so one reply serves every member with data.
 * - Deadlines are per member (a timer each); the shared read blocks at most {@link READ_BLOCK_MS}.
 * - A member that starts to wait for streams the pending read does not cover wakes it: CLIENT
 *   UNBLOCK (sent on the caller's connection to the same server) once the lane knows its
 *   connection's id, else the blocked connection is replaced by a new one. Wake-ups of one tick are
 *   coalesced.
 * - A lane closes its connection as soon as its last member leaves.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';
import type { BlockingConnection, KeyWatch, RedisPort } from './redis/port.js';
import { hashSlot } from './redis/slot.js';
import { nextDelay, RETRY_MIN_MS } from './retry.js';

/** @internal An entry as XRANGE / XREAD return it in buffer mode. */
export type RawEntry = [Buffer, Buffer[]];

/** @internal Entries by stream key. */
export type StreamEntries = Map<string, RawEntry[]>;

/** @internal A stream key and the entry id to read after. */
export type StreamPosition = readonly [key: string, after: string];

/**
 * Longest block of the shared read. Members keep deadlines of their own; this only bounds how long
 * a lane goes without a command, so that a connection that died silently is noticed.
 */
const READ_BLOCK_MS = 1000;

/** How often a CLIENT UNBLOCK that came before its XREAD was blocked is sent again before the
 * connection is replaced instead. */
const UNBLOCK_TRIES = 20;

/**
 * @internal Reply errors of a blocking read on a cluster node that mean: ask the cluster where the
 * slot is now, and try again.
 */
export const MOVING = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|UNBLOCKED|MASTERDOWN)\b/;

/**
 * @internal What a follower's wait fails with once its client is closed for good: the lanes look
 * before each read (at least every {@link READ_BLOCK_MS}, or every recheck of a watched lane).
 */
export function clientClosedError(): Error {
  return new Error('the Redis client was closed (quit or disconnected by its owner)');
}

/** The lane's client is closed: every member that waits fails (the others when they wait next). */
function failClosed(members: Iterable<BlockingMember>): void {
  const err = clientClosedError();
  for (const m of members) m.fail(err);
}

const hubs = new WeakMap<RedisPort, Map<number, Set<Lane>>>();

/** On a cluster: per client, the lane of each node woken by a key watch, by node address. */
const watchedHubs = new WeakMap<RedisPort, Map<string, WatchedLane>>();

/** Clients whose user may not watch keys (CLIENT TRACKING, SUBSCRIBE: ACL): blocking lanes per slot only. */
const watchRefused = new WeakSet<RedisPort>();

/** Clients whose user may not run CLIENT ID (ACL): their lanes are woken by a new connection. */
const unblockRefused = new WeakSet<RedisPort>();

let sharing = true;
/**
 * @internal Followers one blocking connection serves at most; then the next connection is opened.
 * One XREAD costs Redis (and this process) work for every stream it names, at every wake-up: with
 * 1,000 followers on one connection, each write made Redis register 2,000 keys again, and
 * deliveries queued behind it. 64 keeps a follower's latency and Redis's CPU near those of a
 * connection per follower, with 1/64 of the connections (see the `followers` benchmark case).
 */
export const FOLLOWERS_PER_CONNECTION = 64;

let membersPerLane = FOLLOWERS_PER_CONNECTION;
let keyWatches = true;

/**
 * @internal For the benchmark only: with `false`, every follower gets a lane (and a connection) of
 * its own, as before followers shared them; `perLane` sets how many followers a lane takes; with
 * `watch` false, a cluster's followers get a blocking lane per slot, as before key watches. So
 * that the designs can be measured in one run.
 */
export function shareBlockingReads(on: boolean, perLane = FOLLOWERS_PER_CONNECTION, watch = true): void {
  sharing = on;
  membersPerLane = perLane;
  keyWatches = watch;
}

/**
 * Join the blocking reads of `client` for streams in the slot of `key` (every stream one member
 * waits on must share that slot). Leave with {@link BlockingMember.leave}.
 * @internal
 */
export function joinBlockingReads(client: RedisPort, key: string): BlockingMember {
  const cluster = client.cluster;
  const slot = cluster ? hashSlot(key) : 0;
  if (!sharing) return new Lane(client, cluster ? slot : undefined, () => {}).join();
  if (!cluster) return blockingLane(client, slot).join();
  const lane = clusterLane(client, slot);
  return lane instanceof WatchedLane ? lane.join(key) : lane.join();
}

/**
 * The lane of a cluster follower in `slot`, now. A node reads one slot's streams with blocking
 * reads (XREAD refuses keys of several slots): the first slot with a follower on a node gets the
 * blocking lane, and the followers of its other slots the node's watched lane (made when missing),
 * woken by what its key watch reports. A client without key watches gets a blocking lane per slot.
 */
function clusterLane(client: RedisPort, slot: number): Lane | WatchedLane {
  if (keyWatches && !hubs.get(client)?.has(slot) && !watchRefused.has(client)) {
    const watched = watchedLaneOf(client, slot);
    if (watched !== undefined) return watched;
  }
  return blockingLane(client, slot);
}

/** A lane of `client` for `slot` (0 on a single server) with room for one more member. */
function blockingLane(client: RedisPort, slot: number): Lane {
  const cluster = client.cluster;
  let lanes = hubs.get(client);
  if (lanes === undefined) {
    lanes = new Map();
    hubs.set(client, lanes);
  }
  let group = lanes.get(slot);
  if (group === undefined) {
    group = new Set();
    lanes.set(slot, group);
  }
  let lane = [...group].find((l) => l.size < membersPerLane);
  if (lane === undefined) {
    const [own, mine] = [lanes, group];
    const made: Lane = new Lane(client, cluster ? slot : undefined, () => {
      mine.delete(made);
      if (mine.size > 0) return;
      own.delete(slot);
      if (own.size === 0) hubs.delete(client);
    });
    lane = made;
    group.add(lane);
  }
  return lane;
}

interface Waiter {
  resolve(entries: StreamEntries | null): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

/** What a member asks of the lane it is in. */
interface LaneLike {
  /** The member `m` waits, parked, or moved on: read for it. */
  kick(m?: BlockingMember): void;
  leave(m: BlockingMember): void;
}

/** @internal One follower's place in a lane. */
export class BlockingMember {
  #lane: LaneLike;
  spec: StreamPosition[] = [];
  /** The spec as one string, to compare with what a pending read covers. */
  sig = '';
  count = 1;
  /** Stay in the reads after a delivery: the member is expected to ask again from there. */
  park = false;
  /** Included in the reads while not waiting. */
  parked = false;
  waiter: Waiter | undefined;
  /** What a read brought while the member was not waiting, relative to `spec`. */
  stored: StreamEntries | undefined;
  /** The last delivery gave some stream a full batch: more may be stored after it. */
  full = false;
  left = false;

  constructor(lane: LaneLike) {
    this.#lane = lane;
  }

  /** Be read for by `lane` from now on (the lane the member was in has let it go). */
  moveTo(lane: LaneLike): void {
    this.#lane = lane;
  }

  /** Read in the shared reads, or waiting: part of the next read. */
  get active(): boolean {
    return !this.left && (this.waiter !== undefined || (this.parked && this.stored === undefined));
  }

  /**
   * Wait at most `ms` for entries after the given positions (at most `count` per stream). Resolves
   * with the entries, or null when the time ran out or the member left. With `park`, the member
   * stays in the shared reads after a delivery, from the positions after what it got.
   */
  wait(spec: StreamPosition[], count: number, ms: number, park: boolean): Promise<StreamEntries | null> {
    if (this.left) return Promise.resolve(null);
    if (this.waiter !== undefined) throw new Error('a member waits for one read at a time');
    const sig = signature(spec);
    if (sig !== this.sig) {
      this.spec = spec;
      this.sig = sig;
      this.stored = undefined;
    }
    this.count = count;
    this.park = park;
    const stored = this.stored;
    if (stored !== undefined) {
      this.stored = undefined;
      this.delivered(stored);
      this.#lane.kick(this);
      return Promise.resolve(stored);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        // A member whose wait ran out asks again from the same positions: the reads keep it.
        this.parked = this.park;
        resolve(null);
      }, ms);
      this.waiter = { resolve, reject, timer };
      this.#lane.kick(this);
    });
  }

  /** Leave the lane at once: a pending wait resolves with null; the last member closes the connection. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.resolve(null);
    }
    this.#lane.leave(this);
  }

  /** Entries for this member came (`entries` is relative to `spec`). */
  take(entries: StreamEntries): void {
    const w = this.waiter;
    if (w === undefined) {
      this.stored = entries;
      return;
    }
    this.waiter = undefined;
    clearTimeout(w.timer);
    this.delivered(entries);
    w.resolve(entries);
  }

  /**
   * The shared read failed for this member. One that waits gets the error; one that does not leaves
   * the reads, and meets the error (or not, once it has passed) when it asks again.
   */
  fail(err: Error): void {
    const w = this.waiter;
    this.parked = false;
    if (w === undefined) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.reject(err);
  }

  /** Move the positions past what was delivered; parked again unless a stream gave a full batch
   * (the follower then reads on by itself, from elsewhere). */
  delivered(entries: StreamEntries): void {
    let full = false;
    const spec = this.spec.map(([key, after]): StreamPosition => {
      const items = entries.get(key);
      if (items === undefined || items.length === 0) return [key, after];
      if (items.length >= this.count) full = true;
      return [key, items[items.length - 1]![0].toString('latin1')];
    });
    this.spec = spec;
    this.sig = signature(spec);
    this.full = full;
    this.parked = this.park && !full;
  }
}

interface PendingRead {
  readonly conn: BlockingConnection;
  /** What the read covers: each member's signature when it was sent. */
  readonly covered: Map<BlockingMember, string>;
  /** The connection's id, once known (for CLIENT UNBLOCK). */
  readonly id: number | undefined;
  unblockTries: number;
}

/** @internal One blocking connection and the members whose streams it reads. */
class Lane implements LaneLike {
  readonly #client: RedisPort;
  /** The slot this lane reads, on a cluster. */
  readonly #slot: number | undefined;
  readonly #onClose: () => void;
  readonly #members = new Set<BlockingMember>();
  #conn: BlockingConnection | undefined;
  /** The id of `#conn` (CLIENT ID), for CLIENT UNBLOCK; see `#connection()` for when it is asked. */
  #connId: Promise<number | undefined> | undefined;
  #wantId = false;
  #pending: PendingRead | undefined;
  #running = false;
  #wakeQueued = false;
  #retryMs = 0;
  #closed = false;
  readonly #stopListening: () => void;

  constructor(client: RedisPort, slot: number | undefined, onClose: () => void) {
    this.#client = client;
    this.#slot = slot;
    this.#onClose = onClose;
    // A client closed by its owner fails what waits at once, not when the read under way returns:
    // its connection is dropped, and the loop, looking again, finds the client closed.
    this.#stopListening = client.onClosed(() => this.#dropConnection());
  }

  get size(): number {
    return this.#members.size;
  }

  join(): BlockingMember {
    return this.adopt(new BlockingMember(this));
  }

  /** Take `m` in (a member of a lane that closed under it), and read for it if it waits. */
  adopt(m: BlockingMember): BlockingMember {
    this.#members.add(m);
    m.moveTo(this);
    if (m.active) this.kick();
    return m;
  }

  leave(m: BlockingMember): void {
    this.#members.delete(m);
    if (this.#members.size > 0) return;
    this.#closed = true;
    this.#pending = undefined;
    this.#stopListening();
    this.#dropConnection();
    this.#onClose();
  }

  /** A member waits or parked: run a read, or wake the pending one if it does not cover the member. */
  kick(): void {
    if (this.#closed) return;
    if (!this.#running) {
      this.#running = true;
      // Started on the next turn, so that members that ask in the same turn share the first read.
      setImmediate(() => void this.#loop());
      return;
    }
    if (!this.#wakeQueued && this.#pending !== undefined) {
      this.#wakeQueued = true;
      setImmediate(() => {
        this.#wakeQueued = false;
        this.#wake();
      });
    }
  }

  /** The pending read leaves out a waiting member, or covers it at other positions. */
  #stale(p: PendingRead): boolean {
    for (const m of this.#members) if (m.waiter !== undefined && p.covered.get(m) !== m.sig) return true;
    return false;
  }

  #wake(): void {
    const p = this.#pending;
    if (p === undefined || this.#closed || !this.#stale(p)) return;
    this.#wantId = true;
    if (p.id === undefined || unblockRefused.has(this.#client) || p.unblockTries >= UNBLOCK_TRIES) {
      // The blocked read is dropped with its connection; the loop reads again on a new one.
      this.#dropConnection();
      return;
    }
    p.unblockTries++;
    p.conn.unblock(p.id).then(
      (unblocked) => {
        // 0: the XREAD had not reached the server yet (or has just returned): try again.
        if (Number(unblocked) === 0 && this.#pending === p) setImmediate(() => this.#wake());
      },
      () => {
        unblockRefused.add(this.#client);
        if (this.#pending === p) this.#wake();
      },
    );
  }

  #dropConnection(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#connId = undefined;
    // A closed blocking connection rejects its pending command; the loop knows it replaced it.
    conn?.close();
  }

  /** The blocking connection, opened when missing. Undefined while a cluster slot has no known node. */
  #connection(): BlockingConnection | undefined {
    if (this.#conn !== undefined) return this.#conn;
    // On a cluster, a plain connection to the slot's primary: it does not follow the slot by itself
    // (no reconnection); the lane asks the cluster where the slot went and connects there.
    const conn = this.#client.openBlocking(this.#slot);
    if (conn === undefined) return undefined;
    this.#conn = conn;
    // Its id lets a follower that joins later wake the read with CLIENT UNBLOCK. Asked for when the
    // lane has had to wake a read, or serves several followers already; a lone follower (the
    // usual case) never needs it.
    if ((this.#wantId || this.#members.size > 1) && !unblockRefused.has(this.#client)) {
      this.#connId = conn.send(undefined, ['CLIENT', 'ID']).then(Number, () => {
        unblockRefused.add(this.#client);
        return undefined;
      });
    }
    return conn;
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      if (![...this.#members].some((m) => m.active)) break;
      if (this.#client.closed()) {
        // No new connection for a client its owner closed: what waits fails instead.
        this.#dropConnection();
        failClosed(this.#members);
        break;
      }
      const conn = this.#connection();
      if (conn === undefined) {
        await this.#retryLater();
        continue;
      }
      const id = this.#connId === undefined ? undefined : await this.#connId;
      if (this.#closed) break;
      if (conn !== this.#conn) continue;
      // Taken after the last await, so that the read covers every member that waits by now.
      const included = [...this.#members].filter((m) => m.active);
      if (included.length === 0) break;
      const { keys, ids, count, readers } = merge(included);
      const p: PendingRead = {
        conn,
        covered: new Map(included.map((m) => [m, m.sig])),
        id,
        unblockTries: 0,
      };
      this.#pending = p;
      let reply: unknown;
      try {
        reply = await conn.send(
          keys[0],
          ['XREAD', 'COUNT', count, 'BLOCK', READ_BLOCK_MS, 'STREAMS', ...keys, ...ids],
          true,
        );
      } catch (err) {
        if (this.#pending === p) this.#pending = undefined;
        if (this.#closed) break;
        if (conn !== this.#conn) continue;
        await this.#failed(err as Error, included);
        continue;
      }
      if (this.#pending === p) this.#pending = undefined;
      if (this.#closed) break;
      this.#retryMs = 0;
      const streams = streamsOf(reply);
      distribute(streams, readers);
      // The followers take their entries first (their bytes reach the application within this
      // turn); the next read, whose sending costs a few tens of µs, goes out after them.
      if (streams.length > 0) await new Promise((resolve) => setImmediate(resolve));
    }
    this.#running = false;
    // A member may have asked between the last check and now.
    if (!this.#closed && [...this.#members].some((m) => m.active)) this.kick();
  }

  /** A read failed: a cluster slot that moved is looked up again; a reply error is looked into per member. */
  async #failed(err: Error, included: BlockingMember[]): Promise<void> {
    const reply = this.#client.isReplyError(err);
    if (this.#slot !== undefined && (!reply || MOVING.test(err.message))) {
      this.#dropConnection();
      const [key] = merge(included).keys;
      if (key !== undefined) this.#client.refreshSlots(key);
      await this.#retryLater();
      return;
    }
    if (reply && included.length > 1 && (await this.#probe(included)) > 0) return;
    // A connection that failed otherwise than by Redis's answer (timed out, or given up after Redis
    // refused it again and again, see redis/refusals.ts) is not read on again: the members that
    // did not wait in this read, and the next to come, get a new one.
    if (!reply) this.#dropConnection();
    for (const m of included) m.fail(err);
  }

  /**
   * One bad stream (a key of another type, say) fails a whole XREAD: read each member's streams on
   * their own, without blocking, so that only the members that fail get the error.
   */
  async #probe(included: BlockingMember[]): Promise<number> {
    const conn = this.#conn;
    if (conn === undefined) return 0;
    let failed = 0;
    await Promise.all(
      included.map(async (m) => {
        const { keys, ids, readers } = merge([m]);
        try {
          const reply = await conn.send(keys[0], ['XREAD', 'COUNT', m.count, 'STREAMS', ...keys, ...ids], true);
          distribute(streamsOf(reply), readers);
        } catch (err) {
          failed++;
          if (conn === this.#conn) m.fail(err as Error);
        }
      }),
    );
    return failed;
  }

  #retryLater(): Promise<void> {
    // Between attempts to reach the node of a slot that moved or failed over.
    this.#retryMs = this.#retryMs === 0 ? RETRY_MIN_MS : nextDelay(this.#retryMs);
    return new Promise((resolve) => setTimeout(resolve, this.#retryMs).unref());
  }
}

/**
 * The watched lane of the node that serves `slot` now (made when missing), when that node has a
 * blocking lane for another slot already; undefined otherwise (see {@link clusterLane}).
 */
function watchedLaneOf(client: RedisPort, slot: number): WatchedLane | undefined {
  const node = client.nodeOf(slot);
  if (node === undefined) return undefined;
  let watched = watchedHubs.get(client);
  let lane = watched?.get(node);
  if (lane === undefined) {
    const lanes = hubs.get(client);
    if (lanes === undefined || ![...lanes.keys()].some((s) => client.nodeOf(s) === node)) return undefined;
    if (watched === undefined) {
      watched = new Map();
      watchedHubs.set(client, watched);
    }
    const own = watched;
    const made: WatchedLane = new WatchedLane(client, node, () => {
      if (own.get(node) === made) own.delete(node);
      if (own.size === 0) watchedHubs.delete(client);
    });
    lane = made;
    own.set(node, lane);
  }
  return lane;
}

/**
 * Move `m`, a follower of `key` whose slot another node serves now, to the lane a new follower of
 * `key` would join: the blocking lane of its slot, or the watched lane of its new node.
 */
function rehome(client: RedisPort, key: string, m: BlockingMember): void {
  const lane = clusterLane(client, hashSlot(key));
  if (lane instanceof WatchedLane) lane.adopt(m, key);
  else lane.adopt(m);
}

/**
 * How long a follower's "nothing after this position" holds without a message of the key watch:
 * then it is read for again. Covers a slot that moved to another node (whose changes this watch
 * does not hear) and a watch that stopped hearing without closing.
 */
const WATCH_TRUST_MS = 5000;
let watchTrustMs = WATCH_TRUST_MS;

/**
 * @internal For tests only: how long a key-watched follower's "nothing new" holds (default 5 s), so
 * that a test can tell deliveries the watch woke from those of the periodic reads.
 */
export function setWatchTrust(ms = WATCH_TRUST_MS): void {
  watchTrustMs = ms;
}

/**
 * @internal The followers of one cluster node whose slots its blocking lane does not read. One
 * connection watches the node's keys of the followers' namespaces (CLIENT TRACKING, broadcast
 * mode): a follower is read for, without blocking and through the caller's client, when it starts
 * to wait at a new position and whenever a key it reads changes; never between. A follower's wake-up
 * costs one round trip more than a blocking read's (the message, then the read); one XREAD per
 * slot serves every follower of that slot.
 */
class WatchedLane implements LaneLike {
  readonly #client: RedisPort;
  /** The node ("host:port") whose keys the watch hears. */
  readonly #node: string;
  readonly #onClose: () => void;
  readonly #members = new Set<BlockingMember>();
  /** The key each member joined with (its file's slot and namespace). */
  readonly #keyOf = new Map<BlockingMember, string>();
  /** Namespaces watched (`<prefix>{`): the key watch covers every key that starts with one. */
  readonly #prefixes = new Set<string>();
  #watch: KeyWatch | undefined;
  #watchedPrefixes = 0;
  #ready = false;
  /** Per member: the position read at last with nothing after it, and when. */
  readonly #fresh = new Map<BlockingMember, { sig: string; at: number }>();
  /** Per member: the count of key-watch messages for its keys, to tell whether one came during a read. */
  readonly #heard = new Map<BlockingMember, number>();
  /** Members by stream key, and the keys of each member. */
  readonly #readers = new Map<string, Set<BlockingMember>>();
  readonly #keysOf = new Map<BlockingMember, readonly string[]>();
  /** The slot of each member's streams. */
  readonly #slotOf = new Map<BlockingMember, number>();
  /** A pass over the members is due on the next turn. */
  #queued = false;
  /** The watch is being opened (a pass waits for it). */
  #arming = false;
  /** Members whose read is on its way: not read for twice at once. */
  readonly #reading = new Set<BlockingMember>();
  /** Members to look at in the next pass (the others are known to need nothing). */
  #due = new Set<BlockingMember>();
  #retryMs = 0;
  #retrying = false;
  #recheck: NodeJS.Timeout | undefined;
  /** The next pass is a recheck's. */
  #rechecking = false;
  #closed = false;

  constructor(client: RedisPort, node: string, onClose: () => void) {
    this.#client = client;
    this.#node = node;
    this.#onClose = onClose;
  }

  join(key: string): BlockingMember {
    return this.adopt(new BlockingMember(this), key);
  }

  /** Take in `m`, a follower of `key` (new, or moved here from the lane of the node its slot left). */
  adopt(m: BlockingMember, key: string): BlockingMember {
    this.#members.add(m);
    this.#keyOf.set(m, key);
    this.#slotOf.set(m, hashSlot(key));
    m.moveTo(this);
    const prefix = key.slice(0, key.lastIndexOf('{') + 1) || key;
    if (!this.#prefixes.has(prefix)) {
      this.#prefixes.add(prefix);
      // Tracking prefixes cannot be added on a subscribed connection: the watch is opened again.
      if (this.#watch !== undefined) this.#dropWatch();
    }
    if (m.active) this.kick(m);
    return m;
  }

  leave(m: BlockingMember): void {
    this.#forget(m);
    if (this.#members.size > 0) return;
    this.#close();
  }

  #forget(m: BlockingMember): void {
    this.#members.delete(m);
    this.#keyOf.delete(m);
    this.#fresh.delete(m);
    this.#heard.delete(m);
    this.#slotOf.delete(m);
    this.#due.delete(m);
    this.#index(m, []);
  }

  /**
   * Members whose slot another node serves now (a resharding moved it: the cluster client learnt
   * it from a MOVED reply to their reads) go to the lane of that node: this watch never hears
   * their keys again, and they would be read for only at each recheck.
   */
  #rehomeMoved(among: Iterable<BlockingMember> = this.#slotOf.keys()): void {
    const moved: BlockingMember[] = [];
    const nodeOf = new Map<number, string | undefined>();
    for (const m of among) {
      const slot = this.#slotOf.get(m);
      if (slot === undefined || this.#reading.has(m)) continue;
      if (!nodeOf.has(slot)) nodeOf.set(slot, this.#client.nodeOf(slot));
      const node = nodeOf.get(slot);
      if (node !== undefined && node !== this.#node) moved.push(m);
    }
    if (moved.length === 0) return;
    const keys = moved.map((m) => this.#keyOf.get(m)!);
    for (const m of moved) this.#forget(m);
    if (this.#members.size === 0) this.#close();
    for (const [i, m] of moved.entries()) rehome(this.#client, keys[i]!, m);
  }

  #close(): void {
    this.#closed = true;
    clearTimeout(this.#recheck);
    this.#recheck = undefined;
    this.#dropWatch();
    this.#onClose();
  }

  /**
   * The server refused the key watch (an ACL without CLIENT TRACKING or SUBSCRIBE): the client's
   * followers get blocking lanes per slot from now on, these ones included.
   */
  #refused(): void {
    watchRefused.add(this.#client);
    const members = [...this.#members];
    const slots = new Map(this.#slotOf);
    this.#members.clear();
    this.#close();
    for (const m of members) blockingLane(this.#client, slots.get(m)!).adopt(m);
  }

  kick(m?: BlockingMember): void {
    if (this.#closed) return;
    if (m === undefined) for (const each of this.#members) this.#due.add(each);
    else this.#due.add(m);
    if (this.#queued) return;
    this.#queued = true;
    // On the next turn, so that members that ask in the same turn share the reads.
    setImmediate(() => {
      this.#queued = false;
      this.#pass();
    });
  }

  /** Keys changed on the node (null: all of them). */
  #changed(keys: string[] | null): void {
    const touched = new Set<BlockingMember>();
    if (keys === null) for (const m of this.#members) touched.add(m);
    else for (const k of keys) for (const m of this.#readers.get(k) ?? []) touched.add(m);
    if (touched.size === 0) return;
    for (const m of touched) {
      this.#fresh.delete(m);
      this.#heard.set(m, (this.#heard.get(m) ?? 0) + 1);
      this.#due.add(m);
    }
    // At once: a report already gathers the keys changed in one turn of the server's loop.
    this.#pass();
  }

  /** Keep `#readers` in step with the streams `m` reads (none once it left). */
  #index(m: BlockingMember, keys: readonly string[]): void {
    const before = this.#keysOf.get(m);
    if (before !== undefined && before.length === keys.length && before.every((k, i) => k === keys[i])) return;
    for (const key of before ?? []) {
      const set = this.#readers.get(key);
      if (set?.delete(m) && set.size === 0) this.#readers.delete(key);
    }
    if (keys.length === 0) this.#keysOf.delete(m);
    else this.#keysOf.set(m, keys);
    for (const key of keys) {
      let set = this.#readers.get(key);
      if (set === undefined) this.#readers.set(key, (set = new Set()));
      set.add(m);
    }
  }

  #dropWatch(): void {
    this.#watch?.close();
    this.#watch = undefined;
    this.#ready = false;
    // What was heard before is no proof of anything after a gap in hearing.
    this.#fresh.clear();
  }

  #isWatching(): boolean {
    return this.#watch !== undefined && this.#ready && this.#watchedPrefixes === this.#prefixes.size;
  }

  /** The key watch, open and reporting; false while it cannot be (then tried again later). */
  async #watching(): Promise<boolean> {
    if (this.#isWatching()) return true;
    if (this.#watch === undefined || this.#watchedPrefixes !== this.#prefixes.size) {
      this.#dropWatch();
      this.#watchedPrefixes = this.#prefixes.size;
      // On this lane's node, through the slot of a member it serves (a lane without members is
      // closed; its first member may have left, and a member's slot may have moved, its member
      // not yet moved with it): none, and the watch is opened later.
      const slot = [...new Set(this.#slotOf.values())].find((s) => this.#client.nodeOf(s) === this.#node);
      if (slot === undefined) return false;
      const watch = this.#client.openKeyWatch(
        slot,
        [...this.#prefixes],
        (keys) => {
          if (this.#watch === watch) this.#changed(keys);
        },
        () => {
          if (this.#watch !== watch) return;
          this.#dropWatch();
          this.kick();
        },
      );
      if (watch === undefined) return false;
      this.#watch = watch;
    }
    const watch = this.#watch;
    try {
      await watch.ready;
    } catch (err) {
      if (this.#watch !== watch) return false;
      this.#dropWatch();
      if (this.#client.isReplyError(err) && !MOVING.test((err as Error).message)) this.#refused();
      return false;
    }
    if (this.#watch !== watch) return false;
    this.#ready = true;
    this.#fresh.clear();
    return true;
  }

  /**
   * Read for every member that needs it and whose read is not on its way: one XREAD per slot, all
   * sent at once, each settling on its own (a slow one holds back no other slot).
   */
  #pass(): void {
    if (this.#closed || this.#arming || this.#retrying) return;
    if (this.#client.closed()) {
      this.#dropWatch();
      failClosed(this.#members);
      return;
    }
    // At each recheck: members whose slot moved meanwhile (the reads that met it move theirs).
    if (this.#rechecking) {
      this.#rechecking = false;
      this.#rehomeMoved();
      if (this.#closed) return;
    }
    if (!this.#isWatching()) {
      // The watch opens on this lane's node: members whose slot moved elsewhere go first.
      this.#rehomeMoved();
      if (this.#closed) return;
      this.#arming = true;
      this.#watching().then((ok) => {
        this.#arming = false;
        if (this.#closed) return;
        if (ok) {
          this.#retryMs = 0;
          this.kick();
        } else this.#later();
      });
      return;
    }
    const now = Date.now();
    const bySlot = new Map<number, BlockingMember[]>();
    const due = this.#due;
    this.#due = new Set();
    for (const m of due) {
      if (m.left || !this.#members.has(m)) continue;
      this.#index(
        m,
        m.spec.map(([key]) => key),
      );
      if (!m.active || m.spec.length === 0 || this.#reading.has(m)) continue;
      const fresh = this.#fresh.get(m);
      if (fresh !== undefined && fresh.sig === m.sig && now - fresh.at < watchTrustMs) continue;
      const slot = this.#slotOf.get(m)!;
      const list = bySlot.get(slot);
      if (list === undefined) bySlot.set(slot, [m]);
      else list.push(m);
    }
    for (const members of bySlot.values()) {
      for (const m of members) this.#reading.add(m);
      void this.#read(members).finally(() => {
        for (const m of members) this.#reading.delete(m);
        if (this.#closed) return;
        // The read may have met the slot on another node (MOVED): its followers move there now.
        this.#rehomeMoved(members);
        // A member woken while its read was on its way, or one that got a full batch, is due.
        for (const m of members) {
          if (!m.left && this.#members.has(m) && this.#fresh.get(m)?.sig !== m.sig) this.kick(m);
        }
      });
    }
    this.#scheduleRecheck();
  }

  /** A pass after a pause, when the watch could not be opened or the client could not read. */
  #later(): void {
    if (this.#retrying || this.#closed) return;
    this.#retrying = true;
    this.#retryLater().then(() => {
      this.#retrying = false;
      this.kick();
    });
  }

  /** One XREAD, without blocking, for followers of one slot. */
  async #read(members: BlockingMember[]): Promise<void> {
    const { keys, ids, count, readers } = merge(members);
    const asked = members.map((m) => ({ m, sig: m.sig, heard: this.#heard.get(m) ?? 0 }));
    let reply: unknown;
    try {
      reply = await this.#client.send(keys[0], ['XREAD', 'COUNT', count, 'STREAMS', ...keys, ...ids], true);
    } catch (err) {
      if (this.#closed) return;
      if (!this.#client.isReplyError(err) || MOVING.test((err as Error).message)) {
        // The caller's client could not run it now (a failover, a slot on its way): again later.
        this.#later();
        return;
      }
      if (members.length > 1) {
        await Promise.all(members.map((m) => this.#read([m])));
        return;
      }
      for (const m of members) m.fail(err as Error);
      return;
    }
    if (this.#closed) return;
    this.#retryMs = 0;
    distribute(streamsOf(reply), readers);
    const at = Date.now();
    // As of the read, nothing was stored after what it returned (unless it returned a full batch),
    // and any later write is reported: a member is up to date until the watch says otherwise. One
    // whose change was heard while the read was on its way is read for again.
    for (const { m, sig, heard } of asked) {
      if ((this.#heard.get(m) ?? 0) !== heard) continue;
      if (m.sig === sig) this.#fresh.set(m, { sig, at });
      else if (!m.full) this.#fresh.set(m, { sig: m.sig, at });
    }
  }

  /** Read again for followers whose "nothing new" has not been confirmed for a while. */
  #scheduleRecheck(): void {
    if (this.#recheck !== undefined) return;
    this.#recheck = setTimeout(() => {
      this.#recheck = undefined;
      this.#rechecking = true;
      this.kick();
    }, watchTrustMs);
    this.#recheck.unref();
  }

  #retryLater(): Promise<void> {
    this.#retryMs = this.#retryMs === 0 ? RETRY_MIN_MS : nextDelay(this.#retryMs);
    return new Promise((resolve) => setTimeout(resolve, this.#retryMs).unref());
  }
}

function signature(spec: readonly StreamPosition[]): string {
  return spec.map(([key, after]) => `${key}\n${after}`).join('\n');
}

/**
 * The streams of the given members, each once, from the earliest position any of them reads from;
 * and which members read each stream.
 */
function merge(members: BlockingMember[]): {
  keys: string[];
  ids: string[];
  count: number;
  readers: Map<string, BlockingMember[]>;
} {
  const from = new Map<string, string>();
  const readers = new Map<string, BlockingMember[]>();
  let count = 1;
  for (const m of members) {
    count = Math.max(count, m.count);
    for (const [key, after] of m.spec) {
      const seen = from.get(key);
      if (seen === undefined || compareIds(after, seen) < 0) from.set(key, after);
      const list = readers.get(key);
      if (list === undefined) readers.set(key, [m]);
      else list.push(m);
    }
  }
  return { keys: [...from.keys()], ids: [...from.values()], count, readers };
}

/**
 * Hand each member that reads a stream of the reply what it holds for it: entries after the
 * member's own positions, at most its count. Members of other streams are not looked at.
 */
function distribute(streams: [Buffer | string, RawEntry[]][], readers: Map<string, BlockingMember[]>): void {
  if (streams.length === 0) return;
  const byKey = new Map<string, RawEntry[]>();
  const touched = new Set<BlockingMember>();
  for (const [key, items] of streams) {
    const k = key.toString();
    byKey.set(k, items);
    for (const m of readers.get(k) ?? []) touched.add(m);
  }
  for (const m of touched) {
    if (m.left) continue;
    let got: StreamEntries | undefined;
    for (const [key, after] of m.spec) {
      const items = byKey.get(key);
      if (items === undefined) continue;
      const mine = items.filter(([id]) => compareIds(id.toString('latin1'), after) > 0).slice(0, m.count);
      if (mine.length === 0) continue;
      got ??= new Map();
      got.set(key, mine);
    }
    if (got !== undefined) m.take(got);
  }
}

/** Order of two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  if (am.length !== bm.length) return am.length - bm.length;
  if (am !== bm) return am < bm ? -1 : 1;
  if (as.length !== bs.length) return as.length - bs.length;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

/**
 * The per-stream part of an XREAD reply: an array of [key, entries] pairs, or, from a client set
 * to `replyMapping: 'resp3'`, an object keyed by stream.
 */
function streamsOf(reply: unknown): [Buffer | string, RawEntry[]][] {
  if (reply == null) return [];
  if (Array.isArray(reply)) return reply as [Buffer, RawEntry[]][];
  if (reply instanceof Map) return [...(reply as Map<string, RawEntry[]>)];
  return Object.entries(reply as Record<string, RawEntry[]>);
}
