/**
 * The write stream: bytes in, numbered chunks of a fixed size out to a Redis stream, each stored
 * as one piece, or as several when the writer flushes before the chunk is full.
 * @module
 */

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createGzip, type Gzip, constants as zlibConstants } from 'node:zlib';
import { ChunkWindow } from './chunk-window.js';
import { Chunker, FlushTimer, headRoomFor } from './chunker.js';
import { formatCrc, parseCrc } from './crc.js';
import { aborted, corrupt, lostChunks, signalAbortError, wrapRedisError } from './errors.js';
import { type FileKeys, fileKeys } from './format.js';
import { WriterLease } from './lease.js';
import { type MemoryGuard, type MemoryWait, writerGuard } from './memory-guard.js';
import {
  checkClientAndKey,
  type ResolvedWriteOptions,
  resolveWriteOptions,
  type WriteStreamOptions,
} from './options.js';
import { type Progress, ProgressTicker } from './progress.js';
import { portOf, type RedisClient, type RedisPort } from './redis/port.js';
import { Pauses, within } from './retry.js';
import { onceAborted } from './shared-listener.js';
import { linkMemory, probeLink } from './window-size.js';

/** How long `destroy()` waits for the abort record to be stored before it lets go. */
const ABORT_WAIT_MS = 5000;
/**
 * Written through the stream by {@link RedisWriteStream.flush}, so that a flush comes in order
 * with the writes before it (as zlib's does); told apart from an empty write by identity.
 */
const FLUSH = Buffer.alloc(0);
/**
 * The events of a {@link RedisWriteStream} beyond those of every Writable: `ready` (the key is
 * claimed and the file exists, in state `writing`: readers can open it now), `progress` (how many
 * bytes Redis has acknowledged, at most once per `progressInterval`, and once at the end) and
 * `memoryWait` (with `maxRedisMemory`: Redis has no room for the next chunk, and the writer waits;
 * told when the wait begins and at every reading of `used_memory` while it lasts, at least once a
 * second). A listener that throws destroys the stream with its exception.
 */
export interface RedisWriteStream {
  on(event: 'ready', listener: () => void): this;
  on(event: 'progress', listener: (progress: Progress) => void): this;
  on(event: 'memoryWait', listener: (wait: MemoryWait) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'ready', listener: () => void): this;
  once(event: 'progress', listener: (progress: Progress) => void): this;
  once(event: 'memoryWait', listener: (wait: MemoryWait) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A Writable that stores what is written as a file in Redis. Create it with
 * {@link createRedisWriteStream}; the class is exported for types and `instanceof`.
 *
 * 'finish' fires only once every chunk and the end record are acknowledged by Redis.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: typed events, declared as Node's own streams declare theirs
export class RedisWriteStream extends Writable {
  /** The file's key. */
  readonly key: string;
  readonly #client: RedisPort;
  readonly #opts: ResolvedWriteOptions;
  readonly #keys: FileKeys;
  readonly #lease: WriterLease;
  /** Pauses between retries, all cut short when the stream is destroyed. */
  readonly #pauses = new Pauses();
  #gen = randomBytes(8).toString('hex');
  #chunksKey: string;
  #chunkSize: number;
  #encoding: string;

  /** Bytes into chunks and pieces for the window. */
  readonly #chunker: Chunker;
  /** Sends the bytes not yet sent once the oldest of them is `flushInterval` old. */
  readonly #flushTimer: FlushTimer;
  /** The callback of the write(s) the chunker holds, or of a write that waits for room. */
  #blocked: ((error?: Error | null) => void) | undefined;
  /** The piece writes, once the key is claimed. */
  #window: ChunkWindow | undefined;
  /** Called when the window empties or the stream fails. */
  #drained: (() => void) | undefined;
  #creating: Promise<void> | undefined;
  /** Ends `_construct` while the claim is on its way (see {@link destroy}). */
  #constructed: ((err?: Error) => void) | undefined;
  /** Whether the claim succeeded (the file is this writer's). */
  #claimed = false;
  #gzip: Gzip | undefined;
  #committed = false;
  #failure: Error | undefined;
  readonly #progress: ProgressTicker;
  readonly #guard: MemoryGuard | undefined;
  /** The end record is on its way: an abort now is too late to take back, and is ignored. */
  #committing = false;
  /** Stops listening for the `signal` option's abort (set while it may come). */
  #stopAbortWait: (() => void) | undefined;
  readonly #onAbort = (): void => {
    if (!this.#committing) this.destroy(signalAbortError(this.#opts.signal!));
  };

  /** @internal Use {@link createRedisWriteStream}. */
  constructor(client: RedisPort, key: string, opts: ResolvedWriteOptions) {
    super({ highWaterMark: opts.highWaterMark, decodeStrings: true, objectMode: false });
    this.key = key;
    this.#client = client;
    this.#opts = opts;
    this.#keys = fileKeys(opts.prefix, key);
    this.#lease = new WriterLease(client, key, this.#keys, opts, this.#pauses);
    this.#chunksKey = this.#keys.chunks(this.#gen);
    this.#chunkSize = opts.chunkSize;
    this.#encoding = opts.contentEncoding ?? 'identity';
    // Spare buffers for as many chunks as the window may hold: a window grown deep across a long
    // link would otherwise allocate most of its chunks afresh (page faults, and collections for
    // the external memory), which costs more CPU than the rest of the write path. They never hold
    // more than the window did at its deepest.
    const spares = Math.min(
      opts.maxInFlight,
      Math.max(opts.minInFlight, Math.floor(opts.maxInFlightBytes / opts.chunkSize)),
    );
    // Room before each chunk for the start of its XADD (a resumed file's generation, learned at the
    // claim, has the same length as this one).
    const headRoom = headRoomFor(Buffer.byteLength(this.#chunksKey));
    this.#chunker = new Chunker(opts.chunkSize, spares, headRoom, () => this.#flushTimer.cancel());
    this.#flushTimer = new FlushTimer(opts.flushInterval, {
      pending: () => this.#chunker.waiting || this.#gzip !== undefined,
      // Writes wait behind a full window: the writer fills chunks faster than they are stored, and
      // its bytes go out as whole chunks without flushing.
      busy: () => this.#chunker.holding || this.writableLength > 0,
      flush: () => {
        if (this.#failure || this.#committing || this.destroyed) return;
        if (this.#gzip) this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => this.#sendPartial());
        else this.#sendPartial();
      },
    });
    this.#progress = new ProgressTicker(opts.progressInterval, (p) => this.emit('progress', p));
    this.#guard = writerGuard(
      client,
      opts,
      this.#keys.meta,
      () => ({ chunks: this.#chunksKey, gen: this.#gen }),
      (wait) => {
        // Told from inside the guard's wait: a listener's exception ends the stream, not the wait.
        try {
          this.emit('memoryWait', wait);
        } catch (err) {
          this.#fail(err as Error);
        }
      },
    );
    // Attached only now: an already aborted signal destroys the stream at once, and _destroy needs
    // the fields above. Streams given one signal share one listener on it (see onceAborted).
    if (opts.signal) this.#stopAbortWait = onceAborted(opts.signal, this.#onAbort);
  }

  /** Bytes acknowledged by Redis so far (with `resume`, counting what was stored before). */
  get committedBytes(): number {
    return this.#window?.committedBytes ?? 0;
  }

  /** Chunks acknowledged by Redis so far (the last may be partly filled). */
  get committedChunks(): number {
    return this.#window?.committedChunks ?? 0;
  }

  /** The content encoding the file is stored with. */
  get contentEncoding(): string {
    return this.#encoding;
  }

  /**
   * Send the bytes written so far that are not yet stored, without waiting for their chunk to
   * fill or for `flushInterval`, so that followers see them at once; like zlib's `flush()`, it
   * comes in order after the writes before it. `callback` runs once Redis has stored them.
   */
  flush(callback?: (error?: Error | null) => void): void {
    this.write(FLUSH, callback);
  }

  /**
   * Node holds `_destroy` back until `_construct` has called back, and the claim may be waiting out
   * another writer's lease (seconds): end that wait, so that destroy() and the signal take effect at
   * once at every point of the stream's life.
   */
  override destroy(error?: Error): this {
    super.destroy(error);
    this.#pauses.cancel();
    // A claim Redis has not answered (it may be unreachable for long): _destroy bounds its wait.
    this.#constructed?.();
    return this;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // Destroyed before construction (an aborted signal): claim nothing.
    if (this.destroyed) {
      callback();
      return;
    }
    if (this.#opts.compress) {
      this.#gzip = createGzip();
      this.#gzip.on('data', (data: Buffer) => this.#gzipped(data));
      this.#gzip.on('error', (err) => this.destroy(err));
    }
    // 'ready' follows once the file exists: a reader opened then finds it.
    const early = this.#early;
    this.#creating = this.#claim(early);
    if (!early) {
      // Once: when the claim settles, or at once on destroy() (the claim's outcome then goes to
      // _destroy, and no second error to the stream).
      this.#constructed = (err?: Error) => {
        this.#constructed = undefined;
        callback(this.destroyed ? undefined : err);
      };
      this.#creating.then(
        () => this.#constructed?.(),
        (err: Error) => this.#constructed?.(err),
      );
      return;
    }
    // Writes go on at once, their pieces behind the claim; a claim refused fails the stream.
    this.#creating.catch((err: Error) => this.#fail(err));
    callback();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (chunk === FLUSH) this.#flushNow(callback);
    else this.#input([chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    // Buffered writes arrive together (the window was full): one callback for all of them, and each
    // copied straight into the chunks, without joining them into one buffer first.
    if (!this.#gzip && !chunks.some(({ chunk }) => chunk === FLUSH)) {
      this.#input(
        chunks.map(({ chunk }) => chunk),
        callback,
      );
      return;
    }
    // With a flush or gzip among them: one at a time, in order.
    const next = (i: number, err?: Error | null): void => {
      if (err || i === chunks.length) callback(err);
      else this._write(chunks[i]!.chunk, 'buffer' as BufferEncoding, (e) => next(i + 1, e));
    };
    next(0);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stopAbortWait?.();
    this.#lease.stopHeartbeat();
    this.#pauses.cancel();
    this.#flushTimer.stop();
    this.#window?.stop();
    this.#guard?.close();
    this.#gzip?.destroy();
    this.#chunker.clear();
    this.#blocked = undefined;
    this.#failure ??= error ?? aborted(this.key, 'the writer was destroyed');
    this.#wake();
    // A claim still on its way may yet succeed: wait for it, so that the file it creates is marked
    // aborted instead of being left in state writing; but a dead connection must not keep the
    // stream open: the claim and the abort record share ABORT_WAIT_MS. (A claim that succeeds
    // later leaves a file whose lease lapses, as a crashed writer's does.)
    const deadline = Date.now() + ABORT_WAIT_MS;
    const claimed = this.#creating?.catch(() => {}) ?? Promise.resolve();
    within(claimed, ABORT_WAIT_MS, () => 'late' as const)
      .then((outcome) => {
        if (outcome === 'late' || !this.#claimed || !this.#window || this.#committed) return;
        const reason = error ? `${error.name}: ${error.message}` : 'the writer was destroyed';
        const left = Math.max(0, deadline - Date.now());
        return this.#lease.abort(this.#gen, this.#window.whole, reason, lostChunks(error), left);
      })
      .catch(() => {})
      .finally(() => callback(error));
  }

  // ---------------------------------------------------------------------------------------------
  // Input

  /** Take written buffers into chunks, as far as the window has room; call back once all are in. */
  #input(data: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    if (this.#gzip) {
      // The gzip's own write callback provides the backpressure: it only fires once the compressor
      // has consumed the input, which it stops doing while its output is paused.
      const last = data.length - 1;
      for (const [i, d] of data.entries())
        this.#gzip.write(d, i === last ? (err) => callback(err ?? this.#failure) : undefined);
      this.#flushTimer.arm();
      return;
    }
    this.#blocked = callback;
    this.#chunker.hold(data);
    this.#settle();
  }

  /** Call back the held writes once every byte is in and the window has room (or on a failure). */
  #settle(): void {
    this.#flushTimer.arm();
    if (this.#blocked && (this.#failure || (!this.#chunker.holding && this.#chunker.hasRoom()))) {
      const blocked = this.#blocked;
      this.#blocked = undefined;
      blocked(this.#failure);
    }
  }

  /** Compressed output: into chunks, pausing the compressor while the window is full. */
  #gzipped(data: Buffer): void {
    this.#chunker.hold([data]);
    this.#flushTimer.arm();
    if (this.#chunker.holding || !this.#chunker.hasRoom()) this.#gzip!.pause();
  }

  /** Send the bytes of the chunk being filled that were not sent yet, as a piece of it. */
  #sendPartial(): void {
    if (!this.#failure) this.#chunker.sendPartial();
  }

  /** An explicit flush: send what waits, and call back once Redis has stored everything sent. */
  #flushNow(callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    const send = (): void => {
      this.#flushTimer.cancel();
      this.#sendPartial();
      this.#whenDrained().then(() => callback(this.#failure));
    };
    if (this.#gzip) this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, send);
    else send();
  }

  /** Resolves once every piece sent is acknowledged, or the stream failed. */
  #whenDrained(): Promise<void> {
    if (this.#failure || (this.#window?.pending ?? 0) === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.#drained = resolve));
  }

  /** Room or a failure: take held bytes on, resume the compressor, and settle a drain. */
  #wake(): void {
    if (!this.#failure) this.#chunker.take();
    this.#settle();
    if (this.#gzip?.isPaused() && !this.#chunker.holding && this.#chunker.hasRoom()) this.#gzip.resume();
    if (this.#drained && ((this.#window?.pending ?? 0) === 0 || this.#failure)) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#wake();
    this.destroy(err);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Whether the first pieces go out behind the claim, without waiting for its answer: one round
   * trip less per file. Not with `resume` (the file's generation and layout come with the
   * answer), `maxRedisMemory` (the guard's first reading of used_memory too) or `waitReplicas`
   * (a piece counts only once replicas confirm it, after the claim). Nor on a connection whose
   * latency is not known yet: its first probe goes out alone, while the event loop has nothing
   * else to send (pieces sent meanwhile would keep the loop busy and the probe short, see
   * window-size.ts).
   */
  get #early(): boolean {
    return (
      !this.#opts.resume &&
      this.#guard === undefined &&
      this.#opts.waitReplicas === 0 &&
      linkMemory(this.#client, 'write').latency !== Infinity
    );
  }

  async #claim(early: boolean): Promise<void> {
    // The link's latency, measured while the claim is out and nothing else is (window-size.ts).
    probeLink(this.#client, 'write', () => this.#client.send(this.#keys.meta, ['EXISTS', this.#keys.meta]));
    // The claim's command is sent now, before any piece: on the connection (and on a cluster, the
    // node) of every key of the file, Redis runs it first. A piece sent behind a claim that is
    // refused stores nothing (the chunk stream of a new generation does not exist yet).
    const claiming = this.#lease.claim(this.#gen, { chunkSize: this.#chunkSize, encoding: this.#encoding });
    if (early) this.#openWindow(true);
    const claimed = await claiming;
    // Destroyed meanwhile: nothing was claimed (or, with a claim already under way, _destroy
    // marks what it created aborted).
    if (claimed === undefined) return;
    if (claimed.kind === 'created' && claimed.used !== undefined) this.#guard?.note(claimed.used);
    if (claimed.kind === 'resumed') {
      this.#gen = claimed.gen;
      this.#chunksKey = this.#keys.chunks(claimed.gen);
      this.#chunkSize = claimed.chunkSize;
      this.#guard?.useChunkSize(claimed.chunkSize);
      this.#encoding = claimed.encoding;
    }
    this.#claimed = true;
    if (early) this.#window!.claimed();
    else this.#openWindow(false);
    if (claimed.kind === 'resumed') {
      this.#window!.startAt(claimed.chunks, claimed.size, parseCrc(claimed.crc32) ?? 0, claimed.pieces, claimed.last);
    }
    // Destroyed while claiming: _destroy aborts the file; no heartbeat may keep it alive. Nor may
    // one start once the end record is on its way (sent behind the claim).
    if (this.destroyed) return;
    if (!this.#committing && !this.#committed) this.#beat();
    this.emit('ready');
  }

  #openWindow(claimPending: boolean): void {
    this.#window = new ChunkWindow(
      {
        client: this.#client,
        key: this.key,
        keys: this.#keys,
        chunksKey: this.#chunksKey,
        writer: this.#lease.token,
        chunkSize: this.#chunkSize,
        maxInFlight: this.#opts.maxInFlight,
        maxInFlightBytes: this.#opts.maxInFlightBytes,
        minInFlight: this.#opts.minInFlight,
        retryTimeout: this.#opts.retryTimeout,
        waitReplicas: this.#opts.waitReplicas,
        waitTimeout: this.#opts.waitTimeout,
        onAck: () => {
          this.#progress.tick(this.committedBytes, undefined);
          this.#wake();
        },
        onFail: (err) => this.#fail(err),
        release: (chunk) => this.#chunker.release(chunk),
        // Over the memory limit, chunks wait in the window, and the window's being full holds back
        // the writes: backpressure until memory is freed.
        admit: this.#guard ? (bytes) => this.#guard!.admit(bytes) : undefined,
      },
      claimPending,
    );
    this.#chunker.start(this.#window, this.#chunkSize);
  }

  /** Keep the lease with a heartbeat that records the whole chunks acknowledged (where a resume continues). */
  #beat(): void {
    this.#lease.startHeartbeat(
      () => {
        const whole = this.#window!.whole;
        return { bytes: whole.bytes, chunks: whole.chunks, crc32: formatCrc(whole.crc) };
      },
      () => this.#fail(aborted(this.key, 'the file was removed or taken over by another writer while being written')),
      (err) => this.#fail(wrapRedisError(err, this.key, 'keeping the lease (heartbeat)')),
    );
  }

  async #finish(): Promise<void> {
    // Without a window yet, the claim's answer opens it. With pieces sent behind the claim (the
    // window open before the answer), the end record may go behind them too: the script stores
    // it only for the writer that holds the file with every piece stored, and it is sent again
    // below once the claim is granted (a small file is written in one round trip).
    if (this.#window === undefined) await this.#creating;
    if (this.#gzip) {
      const gzip = this.#gzip;
      await new Promise<void>((resolve, reject) => {
        gzip.once('end', resolve);
        gzip.once('error', reject);
        gzip.end();
      });
    }
    if (this.#failure) throw this.#failure;
    this.#flushTimer.stop();
    const window = this.#window!;
    // Compressed output may still wait for room in the window: it goes in as the window drains.
    while (!this.#failure && !this.#chunker.take()) await this.#whenDrained();
    this.#sendPartial();
    // With waitReplicas a piece counts only once replicas confirm it; pieces a memory limit (or a
    // repair) holds back would reach Redis after the end record: the end record then waits for
    // every acknowledgement.
    if (this.#opts.waitReplicas > 0 || window.unsent > 0) await this.#whenDrained();
    if (this.#failure) throw this.#failure;
    const cut = window.cut;
    const args = {
      last: cut.last,
      pieces: cut.pieces,
      size: cut.bytes,
      chunks: cut.chunks,
      crc32: formatCrc(cut.crc),
      ttl: this.#opts.ttl,
    };
    // From here an abort no longer takes the upload back: what the stream reports must match what
    // Redis holds, and the end record may already be stored.
    this.#committing = true;
    // Without waitReplicas the end record goes right behind the last pieces, on the same
    // connection, without waiting for their acknowledgements: a small file costs one round trip less. The script checks that
    // every piece is stored; when one was not (refused, and being written again), it stores
    // nothing, and the commit is sent again once the window has drained.
    // The heartbeat stops first: one that ran after the commit would find the file complete, and
    // take that for a lost lease.
    this.#lease.stopHeartbeat();
    // Whether pieces were unacknowledged when the end record went: the replies of pieces sent just
    // before it may be handled before its own, so window.pending after the reply cannot tell.
    const unacknowledged = window.pending > 0;
    const beforeClaim = !this.#claimed;
    const committing = this.#lease.commit(this.#gen, args);
    // Sent before the claim's answer: the claim's outcome first, so that a refusal fails the
    // stream with its own error (an ACL that refuses the file's keys refuses the end record too);
    // a claim granted only on a later try (another writer's lease waited out, the script loaded
    // again) ran after this end record, which then found no lease or missing pieces.
    if (beforeClaim) {
      await committing.catch(() => {});
      await this.#creating;
    }
    let reply = await committing;
    if (((reply.status === 'corrupt' && unacknowledged) || (beforeClaim && reply.status !== 'ok')) && !this.#failure) {
      this.#committing = false;
      this.#beat();
      await this.#whenDrained();
      this.#lease.stopHeartbeat();
      if (this.#failure) throw this.#failure;
      this.#committing = true;
      reply = await this.#lease.commit(this.#gen, args);
    }
    if (reply.status === 'lease')
      throw aborted(this.key, 'the file was removed or taken over by another writer before it was complete');
    if (reply.status === 'corrupt') throw corrupt(this.key, `cannot commit: ${reply.detail}`);
    this.#committed = true;
    this.#stopAbortWait?.();
    this.#progress.tick(cut.bytes, cut.bytes, true);
  }
}

/**
 * Open a Writable that stores the written bytes as a file at `key`.
 *
 * Bytes are stored as numbered chunks of `chunkSize` (only the last may be shorter); 'finish' fires
 * once every chunk and the end record are acknowledged by Redis. Destroying or aborting the stream
 * marks the file aborted, so that a partial file never reads as complete. Once `end()` was called
 * and the end record is on its way, an abort by `signal` is too late and ignored: the stream
 * finishes. `destroy()` then still ends the stream (with its error, without 'finish'), but the file
 * is complete if the end record reached Redis first: `stat()` tells.
 *
 * @param client - the caller's Redis client, shared with the caller: an ioredis or iovalkey `Redis` or
 *   `Cluster`, or a node-redis client or cluster (`createClient()`, `createCluster()`)
 * @param key - the file's name
 * @throws TypeError / RangeError for bad arguments, at the call
 * @example
 * ```ts
 * // A .gz stored byte for byte, declared so that readers with `decompress` gunzip it.
 * await pipeline(fs.createReadStream('access.log.gz'), createRedisWriteStream(redis, 'logs/2026-11-30.gz', { contentEncoding: 'gzip' }));
 * ```
 */
export function createRedisWriteStream(
  client: RedisClient,
  key: string,
  options?: WriteStreamOptions,
): RedisWriteStream {
  checkClientAndKey(client, key);
  return new RedisWriteStream(portOf(client), key, resolveWriteOptions(options));
}
