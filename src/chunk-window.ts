/**
 * The writer's window of chunk writes: numbering, sending with a bounded number in flight,
 * acknowledging in order, and repairing the stream when Redis refused or lost a chunk.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import type { RedisClient } from './client.js';
import { aborted, corrupt, isRetryable, RedisFileError, timeout, wrapRedisError } from './errors.js';
import { Field, type FileKeys, recordId } from './format.js';
import { REPAIR, runScript } from './scripts.js';

/** First and longest pause between retries while Redis refuses writes (out of memory, busy). */
export const RETRY_MIN_MS = 50;
export const RETRY_MAX_MS = 1000;

/** A chunk cut from the input and not yet acknowledged by Redis. */
interface PendingChunk {
  readonly data: Buffer;
  /** CRC-32 of the file up to and including this chunk. */
  readonly crc: number;
  acked: boolean;
}

/** @internal What the window needs from the stream that owns it. */
export interface ChunkWindowOwner {
  readonly client: RedisClient;
  /** The file's key, for error messages. */
  readonly key: string;
  readonly keys: FileKeys;
  readonly chunksKey: string;
  readonly writer: string;
  readonly chunkSize: number;
  readonly maxInFlight: number;
  readonly retryTimeout: number;
  /** Replicas that must hold a chunk before it counts (`WAIT`), 0 for none; and how long to wait. */
  readonly waitReplicas: number;
  readonly waitTimeout: number;
  /** Chunks were acknowledged: there may be room again. */
  onAck(): void;
  /** The window cannot go on. */
  onFail(err: Error): void;
  /**
   * A chunk is stored for good: acknowledged, with every chunk before it. Nothing sends it again
   * (a repair only rewrites chunks past the acknowledged prefix, and ioredis re-sends only
   * commands left unanswered), so its buffer may be filled again.
   */
  release?(data: Buffer): void;
  /**
   * When set, chunks are sent only once this says so: returns true when sending may go on now,
   * or a promise that resolves when it may (a memory limit).
   */
  admit?(bytes: number): true | Promise<void>;
}

/** @internal */
export class ChunkWindow {
  readonly #owner: ChunkWindowOwner;
  /** Number of the next chunk to cut, and of the next one to send. */
  #next = 0;
  #nextToSend = 0;
  /** Bytes cut into chunks so far, and their running CRC-32. */
  #bytes = 0;
  #crc = 0;
  /** Chunks cut and not yet acknowledged, by number. */
  readonly #pending = new Map<number, PendingChunk>();
  #inFlight = 0;
  /** The acknowledged prefix, and the part of it made of whole chunks (what a resume continues). */
  #committedChunks = 0;
  #committedBytes = 0;
  #wholeChunks = 0;
  #wholeBytes = 0;
  #wholeCrc = 0;
  #recovering = false;
  #admitting = false;
  #troubleSince = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(owner: ChunkWindowOwner) {
    this.#owner = owner;
  }

  /** Continue a stored prefix of `chunks` whole chunks (a resumed file). */
  startAt(chunks: number, bytes: number, crc: number): void {
    this.#next = this.#nextToSend = this.#committedChunks = this.#wholeChunks = chunks;
    this.#bytes = this.#committedBytes = this.#wholeBytes = bytes;
    this.#crc = this.#wholeCrc = crc;
  }

  /** Chunks cut so far, their bytes and CRC-32: what the end record states. */
  get cut(): { chunks: number; bytes: number; crc: number } {
    return { chunks: this.#next, bytes: this.#bytes, crc: this.#crc };
  }

  get committedBytes(): number {
    return this.#committedBytes;
  }

  get committedChunks(): number {
    return this.#committedChunks;
  }

  /** The acknowledged prefix of whole chunks, with its CRC-32: where a resume would continue. */
  get whole(): { chunks: number; bytes: number; crc: number } {
    return { chunks: this.#wholeChunks, bytes: this.#wholeBytes, crc: this.#wholeCrc };
  }

  /** Chunks not yet acknowledged. */
  get pending(): number {
    return this.#pending.size;
  }

  hasRoom(): boolean {
    return this.#pending.size < this.#owner.maxInFlight;
  }

  /** Number the next chunk and send it. The window keeps `data` until Redis acknowledged it. */
  queue(data: Buffer): void {
    this.#bytes += data.length;
    this.#crc = crc32(data, this.#crc);
    this.#pending.set(this.#next++, { data, crc: this.#crc, acked: false });
    this.#sendQueued();
  }

  /** Send nothing more and drop any retry timer. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
  }

  /**
   * Send queued chunks while fewer than `maxInFlight` are in flight: one large write queues many
   * chunks at once, and they still go out a window at a time (and past the memory guard).
   */
  #sendQueued(): void {
    while (
      !this.#recovering &&
      !this.#stopped &&
      !this.#admitting &&
      this.#nextToSend < this.#next &&
      this.#inFlight < this.#owner.maxInFlight
    ) {
      const admitted = this.#owner.admit?.(this.#pending.get(this.#nextToSend)?.data.length ?? 0) ?? true;
      if (admitted !== true) {
        this.#admitting = true;
        admitted.then(
          () => {
            this.#admitting = false;
            this.#sendQueued();
          },
          (err: unknown) => this.#fail(wrapRedisError(err, this.#owner.key, 'reading the memory use of Redis')),
        );
        return;
      }
      const n = this.#nextToSend++;
      const chunk = this.#pending.get(n);
      if (chunk && !chunk.acked) this.#send(n, chunk.data);
    }
  }

  #send(n: number, data: Buffer): void {
    const { client, chunksKey, waitReplicas } = this.#owner;
    this.#inFlight++;
    const stored = waitReplicas > 0 ? this.#storeReplicated(n, data) : client.xaddBuffer(chunksKey, 'NOMKSTREAM', recordId(n), Field.data, data);
    stored.then(
      (id) => {
        this.#inFlight--;
        if (id === null) this.#fail(aborted(this.#owner.key, 'the file was removed while it was being written'));
        else this.#ack(n);
      },
      (err: unknown) => {
        this.#inFlight--;
        this.#onWriteError(n, data, err);
      },
    );
  }

  /**
   * XADD and WAIT in one pipeline: on one connection, to the node that holds the key (a cluster
   * client routes the keyless WAIT with the XADD), so the WAIT covers this very write.
   */
  async #storeReplicated(n: number, data: Buffer): Promise<unknown> {
    const { client, chunksKey, waitReplicas, waitTimeout, key } = this.#owner;
    const replies = await client
      .pipeline([
        ['xadd', chunksKey, 'NOMKSTREAM', recordId(n), Field.data, data],
        ['wait', waitReplicas, waitTimeout],
      ])
      .exec();
    const [[addError, id] = [null, null], [waitError, replicas] = [null, 0]] = replies ?? [];
    if (addError) throw addError;
    if (id === null) return null;
    if (waitError) throw waitError;
    if ((replicas as number) < waitReplicas) {
      throw timeout(key, `chunk ${n} reached ${replicas} of ${waitReplicas} replicas within ${waitTimeout} ms`);
    }
    return id;
  }

  #onWriteError(n: number, data: Buffer, err: unknown): void {
    if (this.#stopped) return;
    if (err instanceof RedisFileError) {
      // Too few replicas confirmed the chunk: write it again (the node that holds it now may be a
      // replica that took over without it), until retryTimeout.
      this.#recover(err);
      return;
    }
    if (err instanceof Error && /equal or smaller than the target stream top item/.test(err.message)) {
      if (this.#owner.waitReplicas > 0) {
        // Stored by an earlier try, maybe on a connection that is gone: no WAIT can vouch for
        // its replication, so it is written again.
        this.#recover(err);
        return;
      }
      // ioredis re-sends commands left unanswered by a dropped connection. If the first try did
      // reach Redis, the retry is refused, because its id is not above the top: the chunk is then
      // already stored, and is compared byte for byte instead of being stored twice. If it is not
      // there, later chunks overtook it across reconnections (ioredis does not always keep the
      // order of re-sent commands): that gap is repaired like one left by a refused write.
      // The check counts as in flight: a repair must not run before its answer is in.
      this.#inFlight++;
      this.#verifyStored(n, data).then(
        (stored) => {
          this.#inFlight--;
          if (stored) this.#ack(n);
          else this.#recover(err);
        },
        (e: unknown) => {
          this.#inFlight--;
          this.#fail(wrapRedisError(e, this.#owner.key, `checking chunk ${n}`));
        },
      );
      return;
    }
    if (isRetryable(err, this.#owner.client)) {
      this.#recover(err);
      return;
    }
    this.#fail(wrapRedisError(err, this.#owner.key, `storing chunk ${n}`));
  }

  async #verifyStored(n: number, data: Buffer): Promise<boolean> {
    const id = recordId(n);
    const found = await this.#owner.client.xrangeBuffer(this.#owner.chunksKey, id, id);
    const stored = found[0]?.[1];
    return stored?.length === 2 && stored[0]!.toString() === Field.data && stored[1]!.equals(data);
  }

  #ack(n: number): void {
    const chunk = this.#pending.get(n);
    if (!chunk || this.#stopped) return;
    chunk.acked = true;
    this.#troubleSince = 0;
    for (let next = this.#pending.get(this.#committedChunks); next?.acked; next = this.#pending.get(this.#committedChunks)) {
      this.#pending.delete(this.#committedChunks);
      this.#committedChunks++;
      this.#committedBytes += next.data.length;
      // A short chunk can only be the last one: a resume never continues after it.
      if (next.data.length === this.#owner.chunkSize) {
        this.#wholeChunks = this.#committedChunks;
        this.#wholeBytes = this.#committedBytes;
        this.#wholeCrc = next.crc;
      }
      this.#owner.release?.(next.data);
    }
    this.#sendQueued();
    this.#owner.onAck();
  }

  /**
   * Redis refused a chunk for a passing reason (out of memory, busy), or a chunk went missing while
   * later ones were stored. Later chunks may then lie past a gap that no reader may pass.
   * So: stop sending, let the window settle, delete whatever lies beyond the acknowledged prefix,
   * and send again from there, retrying with backoff for at most `retryTimeout` ms.
   */
  #recover(cause: unknown): void {
    if (this.#recovering) return;
    this.#recovering = true;
    // A chunk still in flight may be acknowledged meanwhile (which clears the trouble mark): the
    // retry budget counts from here.
    const since = (this.#troubleSince ||= Date.now());
    const { client, keys, chunksKey, writer, key, retryTimeout } = this.#owner;
    const attempt = (delay: number): void => {
      this.#retryTimer = setTimeout(() => {
        if (this.#stopped) return;
        if (this.#inFlight > 0) {
          attempt(delay);
          return;
        }
        if (Date.now() - since > retryTimeout) {
          this.#fail(wrapRedisError(cause, key, `storing chunk ${this.#committedChunks} (gave up after ${retryTimeout} ms)`));
          return;
        }
        runScript(client, REPAIR, [keys.meta, chunksKey, keys.events], [writer, this.#committedChunks]).then(
          (held) => {
            if (this.#stopped) return;
            if (Array.isArray(held)) {
              this.#fail(
                corrupt(
                  key,
                  `chunks that Redis acknowledged are missing: the last stored entry is ${held[1]}, chunk ${this.#committedChunks - 1} was expected ` +
                    '(lost when a replica without them took over from a failed primary? `waitReplicas` prevents that)',
                ),
              );
              return;
            }
            if (held === 0) {
              this.#fail(aborted(key, 'the file was removed or taken over by another writer while being written'));
              return;
            }
            for (const [n, chunk] of this.#pending) if (n >= this.#committedChunks) chunk.acked = false;
            this.#nextToSend = this.#committedChunks;
            this.#recovering = false;
            this.#sendQueued();
          },
          (err: unknown) => {
            if (isRetryable(err, client)) attempt(Math.min(delay * 2, RETRY_MAX_MS));
            else this.#fail(wrapRedisError(err, key, 'repairing the chunk stream'));
          },
        );
      }, delay);
    };
    attempt(RETRY_MIN_MS);
  }

  #fail(err: Error): void {
    if (this.#stopped) return;
    this.stop();
    this.#owner.onFail(err);
  }
}
