/**
 * The writer's memory guard: hold back while Redis uses more memory than allowed, woken by the
 * events of readers that free memory rather than by polling.
 * @internal
 * @module
 */

import { FREED_FIELD, Limits, memoryEventsKey } from './format.js';
import type { BlockingConnection, RedisPort } from './redis/port.js';
import { hashSlot } from './redis/slot.js';
import { run, TRIM, USED_MEMORY } from './scripts/index.js';

/** How old a reading of `used_memory` may get before it is read again (in the background while there is room). */
const CHECK_EVERY_MS = 100;
/** Longest blocking wait for a `freed` event before reading `used_memory` again (other clients free memory silently). */
const WAIT_MS = 1000;
/** Pause before a blocking read that failed is tried again on a new connection. */
const RETRY_MS = 100;
/**
 * Bytes a reader of a file written under a memory limit asks for at once (at least one chunk): Redis
 * holds a reply in its memory until the reader's socket has taken it, which a reader busy with
 * what it read does late, so every reader's reply counts against the writer's limit.
 * @internal
 */
export const GUARDED_READ_BYTES = 256 * 1024;

/** @internal Entries a reader of a file written under a memory limit asks for at once. */
export function guardedBatch(chunkSize: number): number {
  return Math.max(1, Math.floor(GUARDED_READ_BYTES / chunkSize));
}

/**
 * @internal What `bytes` of data cost in Redis's `used_memory`, stored in a stream entry or held in
 * a reply: jemalloc rounds an allocation up to its size class (four classes per power of two, so at
 * most a quarter more), plus the entry's fields and its node in the radix tree (measured: under 512
 * bytes). Never less than what Redis really uses, so that the guard's estimate stays on the safe side.
 */
export function entryCost(bytes: number): number {
  const n = bytes + 64;
  const step = 2 ** Math.max(3, Math.floor(Math.log2(n - 1)) - 2);
  return Math.ceil(n / step) * step + 512;
}

/**
 * What a writer held back by `maxRedisMemory` reports while it waits (the write stream's
 * `memoryWait` event): when a reading of `used_memory` first leaves no room for its next chunk,
 * then at every reading while it waits (at least once a second).
 */
export interface MemoryWait {
  /** Redis's `used_memory` at the last reading, in bytes. */
  readonly usedMemory: number;
  /** The writer's `maxRedisMemory`, in bytes. */
  readonly limit: number;
  /**
   * Bytes the writer needs below the limit to send its next chunk: the chunk as Redis stores it,
   * the room kept for the readers' pending replies and for the chunk Redis takes in next. It goes
   * on while `usedMemory + needed` is above `limit`.
   */
  readonly needed: number;
  /** Milliseconds since this wait began. */
  readonly waitedMs: number;
}

/** @internal */
export class MemoryGuard {
  readonly #client: RedisPort;
  readonly #limit: number;
  readonly #events: string;
  readonly #routeKey: string;
  /**
   * What the readers' replies may add to Redis's memory at any moment: Redis holds each reader's
   * pending reply (one batch of `guardedBatch` entries) until its socket has taken it.
   */
  #reserve: number;
  readonly #reserveFor: (chunkSize: number) => number;
  /**
   * What Redis holds for the chunk it takes in next: after each large argument it sets aside a
   * query buffer of that argument's size for the next one on the connection (it expects another),
   * and keeps it between commands, where a reading of `used_memory` may or may not have seen it.
   * Counted always: at worst once too often, one chunk of room left unused.
   */
  #inbound: number;
  /**
   * The last reading of `used_memory`, when it was taken, and `#sent` when it was asked for: the
   * reading runs on the writer's connection after every piece sent before it, so it counts them.
   */
  #used = Number.POSITIVE_INFINITY;
  #readAt = 0;
  #sentAtReading = 0;
  /** The cost (`entryCost`) of every piece admitted so far. */
  #sent = 0;
  #refreshing = false;
  /**
   * The last `freed` event seen: a wait wakes on any event after it, so that memory freed since
   * the last reading is never missed (at worst the guard reads once more).
   */
  #last: string | undefined;
  readonly #relieve: (() => Promise<boolean>) | undefined;
  readonly #onWait: ((wait: MemoryWait) => void) | undefined;
  #blocking: BlockingConnection | undefined;
  #closed = false;

  /**
   * @param routeKey a key of the file being written: on a cluster, the limit applies to the node
   *   that holds the file.
   * @param reserve - bytes kept free, for chunks of a given size, for what the file's readers have
   *   asked for and Redis has not yet sent them
   * @param chunkSize - the size of the file's chunks (a resumed file's may differ: see
   *   {@link MemoryGuard.useChunkSize})
   * @param relieve - run while over the limit, before waiting: frees what the writer itself may
   *   free (chunks its consumers are done with), and says whether it freed anything
   * @param onWait - told of every reading that leaves no room, while it holds the writer back
   */
  constructor(
    client: RedisPort,
    limit: number,
    events: string,
    routeKey: string,
    reserve: (chunkSize: number) => number,
    chunkSize: number,
    relieve?: () => Promise<boolean>,
    onWait?: (wait: MemoryWait) => void,
  ) {
    this.#client = client;
    this.#limit = limit;
    this.#events = events;
    this.#routeKey = routeKey;
    this.#reserveFor = reserve;
    this.#reserve = reserve(chunkSize);
    this.#inbound = entryCost(chunkSize);
    this.#relieve = relieve;
    this.#onWait = onWait;
  }

  /** The file's chunks are of `chunkSize` (a resumed file keeps its own): the readers' batches, and the reserve, follow it. */
  useChunkSize(chunkSize: number): void {
    this.#reserve = this.#reserveFor(chunkSize);
    this.#inbound = entryCost(chunkSize);
  }

  /** @internal Bytes kept free for the readers' pending replies. */
  get reserve(): number {
    return this.#reserve;
  }

  /**
   * Before `bytes` more are sent: true when they fit under the limit by the estimate (the last
   * reading, what was sent since, the readers' reserve and the query buffer Redis keeps for the
   * next chunk), and they count as sent; else a
   * promise that resolves once a reading says they fit, after which the caller asks again.
   */
  admit(bytes: number): true | Promise<void> {
    const cost = entryCost(bytes);
    if (this.#fits(this.#used, this.#sentAtReading, cost)) {
      // Other clients change Redis's memory too: a reading now and then, in the background while
      // there is room. Asked before this piece is sent, so it does not count it.
      if (Date.now() - this.#readAt >= CHECK_EVERY_MS) void this.#refresh();
      this.#sent += cost;
      return true;
    }
    return this.#wait(cost);
  }

  /**
   * A reading of `used_memory` taken before anything was sent (the claim returns one): the first
   * pieces are admitted on it, without a reading of their own (a small file then costs no round
   * trip more than without a limit).
   */
  note(used: number): void {
    if (this.#sent > 0 || this.#readAt > 0) return;
    this.#used = used;
    this.#sentAtReading = 0;
    this.#readAt = Date.now();
  }

  #fits(used: number, sentAtReading: number, cost: number): boolean {
    return used + (this.#sent - sentAtReading) + this.#reserve + this.#inbound + cost <= this.#limit;
  }

  async #refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      await this.#read();
    } catch {
      // A failed reading leaves the estimate as it was: it only grows until the next reading.
    } finally {
      this.#refreshing = false;
    }
  }

  /** Read `used_memory`, and keep the reading unless a newer one came meanwhile. */
  async #read(): Promise<void> {
    const sent = this.#sent;
    const used = await this.#usedMemory();
    if (sent < this.#sentAtReading) return;
    this.#used = used;
    this.#sentAtReading = sent;
    this.#readAt = Date.now();
  }

  async #wait(cost: number): Promise<void> {
    // Trimming by the writer itself: once when held back, and again after a wait that nothing
    // woke (its consumers' own reports trim, and wake it, meanwhile).
    let relieve = this.#relieve !== undefined;
    const since = Date.now();
    for (;;) {
      // The position first (once: later waits go on from the last event seen), then the reading:
      // memory freed in between wakes the wait at once.
      if (this.#last === undefined) {
        const events = this.#events;
        const top = (await this.#client.send(events, ['XREVRANGE', events, '+', '-', 'COUNT', 1])) as [
          string,
          string[],
        ][];
        this.#last = top[0]?.[0] ?? '0-0';
      }
      await this.#read();
      // The piece is counted when the window asks again, as it does once this resolves.
      if (this.#fits(this.#used, this.#sentAtReading, cost) || this.#closed) return;
      // What is sent is counted in the reading just taken: what the next chunk needs is the rest.
      const needed = this.#reserve + this.#inbound + cost;
      this.#onWait?.({ usedMemory: this.#used, limit: this.#limit, needed, waitedMs: Date.now() - since });
      if (this.#closed) return;
      if (relieve) {
        relieve = false;
        if (await this.#relieve!()) continue;
      }
      const reply = await this.#waitForEvent();
      const entries = reply?.[0]?.[1];
      if (entries && entries.length > 0) this.#last = entries[entries.length - 1]![0];
      else relieve = this.#relieve !== undefined;
    }
  }

  /**
   * One blocking read of the events stream, on a connection of the guard's own (on a cluster, to
   * the primary of the stream's slot). Null when nothing came; after a failure (the slot moved,
   * the connection dropped) the connection is replaced, after a pause.
   */
  async #waitForEvent(): Promise<[string, [string, string[]][]][] | null> {
    // Closed while the reading or the relief was on its way: no connection may open after close().
    if (this.#closed) return null;
    const events = this.#events;
    this.#blocking ??= this.#client.openBlocking(hashSlot(events));
    const blocking = this.#blocking;
    try {
      if (blocking === undefined) throw new Error('no primary is known for the slot of the events');
      const command = ['XREAD', 'BLOCK', WAIT_MS, 'STREAMS', events, this.#last!];
      return (await blocking.send(events, command)) as [string, [string, string[]][]][] | null;
    } catch {
      if (this.#closed || blocking !== this.#blocking) return null;
      blocking?.close();
      this.#blocking = undefined;
      this.#client.refreshSlots(events);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      return null;
    }
  }

  async #usedMemory(): Promise<number> {
    return (await run(this.#client, USED_MEMORY, { meta: this.#routeKey }, {})).used;
  }

  close(): void {
    this.#closed = true;
    this.#blocking?.close();
    this.#blocking = undefined;
  }
}

/**
 * @internal The memory guard of a writer with `maxRedisMemory` (else undefined). While it holds the
 * writer back, the writer trims what its consumers are all done with itself (consumers that failed
 * on the file or gave it up trim nothing more of it), which also marks the file under pressure.
 * `file()` names the chunk stream and generation being written (a resume may change them).
 */
export function writerGuard(
  client: RedisPort,
  opts: {
    maxRedisMemory: number | undefined;
    consumers: number | readonly string[] | undefined;
    prefix: string;
    chunkSize: number;
  },
  meta: string,
  file: () => { chunks: string; gen: string },
  onWait?: (wait: MemoryWait) => void,
): MemoryGuard | undefined {
  if (opts.maxRedisMemory === undefined) return undefined;
  const relieve =
    opts.consumers === undefined
      ? undefined
      : async () => {
          const { chunks, gen } = file();
          return (await run(client, TRIM, { meta, chunks }, { gen, consumer: '', position: 0 })).trimmed > 0;
        };
  // Each consumer reads the file as it is written (any other reader of it is not counted: one at least).
  const readers = Math.max(1, typeof opts.consumers === 'number' ? opts.consumers : (opts.consumers?.length ?? 0));
  const reserve = (chunkSize: number): number => readers * guardedBatch(chunkSize) * entryCost(chunkSize);
  return new MemoryGuard(
    client,
    opts.maxRedisMemory,
    memoryEventsKey(opts.prefix),
    meta,
    reserve,
    opts.chunkSize,
    relieve,
    onWait,
  );
}

/**
 * Tell writers held back by a memory limit that memory was freed (chunks trimmed, a file deleted).
 * @internal
 */
export function announceFreed(client: RedisPort, events: string, what: string): Promise<unknown> {
  // The stream only wakes writers waiting now (they read used_memory again at least every
  // second anyway): it expires a minute after its last event instead of staying behind.
  return Promise.all([
    client.send(events, ['XADD', events, 'MAXLEN', '~', Limits.freedMaxLen, '*', FREED_FIELD, what]),
    client.send(events, ['PEXPIRE', events, Limits.freedTtl]),
  ]).catch(() => undefined);
}
