/**
 * Blocking reads shared by every follower of one client object. Each follower (a reader at the
 * stored tail of a file being written, or one waiting for a file to be created) is a member of a
 * lane; a lane holds one blocking connection and runs one `XREAD COUNT c BLOCK ms STREAMS ...` over
 * the streams of all its members. On a single server a client has one lane per
 * {@link FOLLOWERS_PER_CONNECTION} followers; on a cluster, where XREAD refuses keys of different
 * hash slots, the same per slot in use, on a plain connection to the node that serves the slot (not
 * a copy of the whole Cluster client). A lane that met MOVED or lost its node asks the cluster where
 * the slot is now and connects there.
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

import { Buffer } from 'node:buffer';
import type { BlockingConnection, RedisPort } from './redis/port.js';
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

const hubs = new WeakMap<RedisPort, Map<number, Set<Lane>>>();

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

/**
 * @internal For the benchmark only: with `false`, every follower gets a lane (and a connection) of
 * its own, as before followers shared them; `perLane` sets how many followers a lane takes. So
 * that the designs can be measured in one run.
 */
export function shareBlockingReads(on: boolean, perLane = FOLLOWERS_PER_CONNECTION): void {
  sharing = on;
  membersPerLane = perLane;
}

/** @internal The hash slot of a key, as Redis Cluster computes it (CRC16 of the hash tag). */
export function hashSlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 16383;
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
  return lane.join();
}

interface Waiter {
  resolve(entries: StreamEntries | null): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

/** @internal One follower's place in a lane. */
export class BlockingMember {
  readonly #lane: Lane;
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
  left = false;

  constructor(lane: Lane) {
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
      this.#lane.kick();
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
      this.#lane.kick();
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
class Lane {
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

  constructor(client: RedisPort, slot: number | undefined, onClose: () => void) {
    this.#client = client;
    this.#slot = slot;
    this.#onClose = onClose;
  }

  get size(): number {
    return this.#members.size;
  }

  join(): BlockingMember {
    const m = new BlockingMember(this);
    this.#members.add(m);
    return m;
  }

  leave(m: BlockingMember): void {
    this.#members.delete(m);
    if (this.#members.size > 0) return;
    this.#closed = true;
    this.#pending = undefined;
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
