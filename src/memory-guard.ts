/**
 * The writer's memory guard: hold back while Redis uses more memory than allowed, woken by the
 * events of readers that free memory rather than by polling.
 * @internal
 * @module
 */

import { closeConnection, openBlockingConnection, type RedisClient } from './client.js';
import type { Redis } from 'ioredis';

/** How long a cheap reading of `used_memory` is trusted while under the limit. */
const CHECK_EVERY_MS = 100;
/** Longest blocking wait for a `freed` event before reading `used_memory` again (other clients free memory silently). */
const WAIT_MS = 1000;

/** @internal */
export class MemoryGuard {
  readonly #client: RedisClient;
  readonly #limit: number;
  readonly #events: string;
  #checkedAt = 0;
  #blocking: Redis | undefined;
  #closed = false;

  constructor(client: RedisClient, limit: number, events: string) {
    this.#client = client;
    this.#limit = limit;
    this.#events = events;
  }

  /** True when a recent reading was under the limit; else a promise that resolves once it is. */
  admit(): true | Promise<void> {
    return Date.now() - this.#checkedAt < CHECK_EVERY_MS ? true : this.#wait();
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
        return;
      }
      if (this.#closed) return;
      this.#blocking ??= openBlockingConnection(this.#client) as Redis;
      const reply = (await this.#blocking.xread('BLOCK', WAIT_MS, 'STREAMS', this.#events, last).catch(() => null)) as
        | [string, [string, string[]][]][]
        | null;
      const entries = reply?.[0]?.[1];
      if (entries && entries.length > 0) last = entries[entries.length - 1]![0];
    }
  }

  async #usedMemory(): Promise<number> {
    const info = await this.#client.info('memory');
    return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
  }

  close(): void {
    this.#closed = true;
    closeConnection(this.#blocking);
    this.#blocking = undefined;
  }
}

/**
 * Tell writers held back by a memory limit that memory was freed (chunks trimmed, a file deleted).
 * @internal
 */
export function announceFreed(client: RedisClient, events: string, what: string): Promise<unknown> {
  return client.xadd(events, 'MAXLEN', '~', 100, '*', 'freed', what).catch(() => undefined);
}
