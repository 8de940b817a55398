/**
 * The writer's memory guard: hold back while Redis uses more memory than allowed, woken by the
 * events of readers that free memory rather than by polling.
 * @internal
 * @module
 */

import type { Redis } from 'ioredis';
import { closeConnection, openBlockingConnection, type RedisClient } from './client.js';
import { FREED_FIELD, Limits, memoryEventsKey } from './format.js';
import { run, TRIM, USED_MEMORY } from './scripts/index.js';

/** How long, and for how many bytes sent, a reading of `used_memory` under the limit is trusted. */
const CHECK_EVERY_MS = 100;
const CHECK_EVERY_BYTES = 1024 * 1024;
/** Longest blocking wait for a `freed` event before reading `used_memory` again (other clients free memory silently). */
const WAIT_MS = 1000;

/** @internal */
export class MemoryGuard {
  readonly #client: RedisClient;
  readonly #limit: number;
  readonly #events: string;
  readonly #routeKey: string;
  #checkedAt = 0;
  #bytesSince = 0;
  readonly #relieve: (() => Promise<boolean>) | undefined;
  #blocking: Redis | undefined;
  #closed = false;

  /**
   * @param routeKey a key of the file being written: on a cluster, the limit applies to the node
   *   that holds the file.
   * @param relieve - run while over the limit, before waiting: frees what the writer itself may
   *   free (chunks its consumers are done with), and says whether it freed anything
   */
  constructor(client: RedisClient, limit: number, events: string, routeKey: string, relieve?: () => Promise<boolean>) {
    this.#client = client;
    this.#limit = limit;
    this.#events = events;
    this.#routeKey = routeKey;
    this.#relieve = relieve;
  }

  /**
   * Before `bytes` more are sent: true when a recent reading was under the limit, else a promise
   * that resolves once Redis is under it.
   */
  admit(bytes: number): true | Promise<void> {
    this.#bytesSince += bytes;
    if (Date.now() - this.#checkedAt < CHECK_EVERY_MS && this.#bytesSince < CHECK_EVERY_BYTES) return true;
    return this.#wait();
  }

  async #wait(): Promise<void> {
    let last = '$';
    for (;;) {
      // The position first, then the reading: memory freed in between wakes the wait at once.
      if (last === '$') {
        const top = (await this.#client.xrevrange(this.#events, '+', '-', 'COUNT', 1)) as [string, string[]][];
        last = top[0]?.[0] ?? '0-0';
      }
      if ((await this.#usedMemory()) <= this.#limit) {
        this.#checkedAt = Date.now();
        this.#bytesSince = 0;
        return;
      }
      if (this.#closed) return;
      if (this.#relieve && (await this.#relieve())) continue;
      this.#blocking ??= openBlockingConnection(this.#client) as Redis;
      const reply = (await this.#blocking.xread('BLOCK', WAIT_MS, 'STREAMS', this.#events, last).catch(() => null)) as
        | [string, [string, string[]][]][]
        | null;
      const entries = reply?.[0]?.[1];
      if (entries && entries.length > 0) last = entries[entries.length - 1]![0];
    }
  }

  async #usedMemory(): Promise<number> {
    return (await run(this.#client, USED_MEMORY, { meta: this.#routeKey }, {})).used;
  }

  close(): void {
    this.#closed = true;
    closeConnection(this.#blocking);
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
  client: RedisClient,
  opts: { maxRedisMemory: number | undefined; consumers: unknown; prefix: string },
  meta: string,
  file: () => { chunks: string; gen: string },
): MemoryGuard | undefined {
  if (opts.maxRedisMemory === undefined) return undefined;
  const relieve =
    opts.consumers === undefined
      ? undefined
      : async () => {
          const { chunks, gen } = file();
          return (await run(client, TRIM, { meta, chunks }, { gen, consumer: '', position: 0 })).trimmed > 0;
        };
  return new MemoryGuard(client, opts.maxRedisMemory, memoryEventsKey(opts.prefix), meta, relieve);
}

/**
 * Tell writers held back by a memory limit that memory was freed (chunks trimmed, a file deleted).
 * @internal
 */
export function announceFreed(client: RedisClient, events: string, what: string): Promise<unknown> {
  // The stream only wakes writers waiting now (they read used_memory again at least every
  // second anyway): it expires a minute after its last event instead of staying behind.
  return Promise.all([
    client.xadd(events, 'MAXLEN', '~', Limits.freedMaxLen, '*', FREED_FIELD, what),
    client.pexpire(events, Limits.freedTtl),
  ]).catch(() => undefined);
}
