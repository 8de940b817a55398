/**
 * A named consumer's bookkeeping in Redis while it reads a file: its position (so that chunks every
 * consumer has consumed can be trimmed under a memory limit) and its acknowledgement at the end.
 * @internal
 * @module
 */

import { ConsumedChunks } from './consumed.js';
import { aborted, notFound, wrapRedisError } from './errors.js';
import { trimmedError } from './file-watch.js';
import { type FileKeys, Flag, type MetaRecord, memoryEventsKey } from './format.js';
import { announceFreed } from './memory-guard.js';
import type { RedisPort } from './redis/port.js';
import { ACK, JOIN, run, TRIM } from './scripts/index.js';

/** @internal */
export class ConsumerBook {
  readonly #client: RedisPort;
  readonly #key: string;
  readonly #keys: FileKeys;
  readonly #prefix: string;
  readonly #consumer: string;
  readonly #meta: MetaRecord;
  /** How far the application has consumed, when the file is trimmed; and what was reported. */
  readonly #consumed: ConsumedChunks | undefined;
  #reported = 0;
  #reporting: Promise<void> | undefined;

  /**
   * @param start - the offset the read starts at
   * @param decoding - whether what the application takes out comes out of a decompressor
   */
  constructor(
    client: RedisPort,
    key: string,
    keys: FileKeys,
    options: { prefix: string; consumer: string; meta: MetaRecord; start: number; decoding: boolean },
  ) {
    this.#client = client;
    this.#key = key;
    this.#keys = keys;
    this.#prefix = options.prefix;
    this.#consumer = options.consumer;
    this.#meta = options.meta;
    // Positions matter only where consumers trim what they all consumed.
    this.#consumed = options.meta.trim
      ? new ConsumedChunks(options.meta.chunkSize, options.start, options.decoding)
      : undefined;
  }

  /** Whether positions are kept (the file is trimmed under a memory limit). */
  get tracking(): boolean {
    return this.#consumed !== undefined;
  }

  /** Bytes went into the Readable (decoded bytes when decompressing). */
  pushed(bytes: number): void {
    this.#consumed?.pushed(bytes);
  }

  /** Chunks up to `through` went into the decompressor, which holds `held` decoded bytes yet. */
  decoded(through: number, held: number): void {
    this.#consumed?.decoded(through, held);
  }

  /**
   * Record the chunk the read starts at, so that nothing from there on is trimmed under it (a
   * restarted consumer may have recorded a later position before).
   */
  async join(first: number): Promise<void> {
    if (!this.#consumed) return;
    let reply: Awaited<ReturnType<typeof JOIN.decode>>;
    try {
      reply = await run(
        this.#client,
        JOIN,
        { meta: this.#keys.meta },
        { gen: this.#meta.gen, consumer: this.#consumer, first, restart: Flag.no },
      );
    } catch (err) {
      throw wrapRedisError(err, this.#key, `recording the position of consumer ${JSON.stringify(this.#consumer)}`);
    }
    if (reply.status === 'missing')
      throw notFound(this.#key, 'the file was removed, replaced or expired while being opened');
    if (reply.status === 'gone') throw trimmedError(this.#key, reply.trimmed, first);
    this.#reported = first;
  }

  /**
   * Report how far the application has consumed (not what was fetched and is still buffered:
   * `buffered` bytes in `encoding`), so that chunks every consumer has passed can be trimmed; freed
   * memory wakes held-back writers. One report at a time.
   */
  report(buffered: () => { length: number; encoding: BufferEncoding | null }): Promise<void> {
    if (!this.#consumed) return Promise.resolve();
    this.#reporting ??= this.#report(buffered).finally(() => (this.#reporting = undefined));
    return this.#reporting;
  }

  async #report(buffered: () => { length: number; encoding: BufferEncoding | null }): Promise<void> {
    const consumed = this.#consumed!;
    const at = (): number => {
      const b = buffered();
      return consumed.chunks(b.length, b.encoding);
    };
    for (let position = at(); position > this.#reported; position = at()) {
      let trimmed: number;
      try {
        ({ trimmed } = await run(
          this.#client,
          TRIM,
          { meta: this.#keys.meta, chunks: this.#keys.chunks(this.#meta.gen) },
          { gen: this.#meta.gen, consumer: this.#consumer, position },
        ));
      } catch (err) {
        throw wrapRedisError(err, this.#key, `reporting the position of consumer ${JSON.stringify(this.#consumer)}`);
      }
      this.#reported = position;
      if (trimmed > 0) await announceFreed(this.#client, memoryEventsKey(this.#prefix), this.#key);
    }
  }

  /** Acknowledge the whole file, read and checked: it counts toward the file's deletion. */
  async ack(): Promise<void> {
    let reply: Awaited<ReturnType<typeof ACK.decode>>;
    try {
      reply = await run(
        this.#client,
        ACK,
        { meta: this.#keys.meta, chunks: this.#keys.chunks(this.#meta.gen), events: this.#keys.events },
        { gen: this.#meta.gen, consumer: this.#consumer, any: Flag.no },
      );
    } catch (err) {
      throw wrapRedisError(err, this.#key, `acknowledging as consumer ${JSON.stringify(this.#consumer)}`);
    }
    if (reply.status === 'missing')
      throw notFound(this.#key, 'the file was removed before this consumer acknowledged it');
    if (reply.status === 'unfinished') throw aborted(this.#key, `cannot acknowledge a file in state ${reply.state}`);
    if (reply.status === 'deleted' && this.#meta.trim)
      await announceFreed(this.#client, memoryEventsKey(this.#prefix), this.#key);
  }
}
