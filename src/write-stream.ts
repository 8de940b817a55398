/**
 * The write stream: bytes in, numbered chunks of a fixed size out to a Redis stream.
 * @module
 */

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { constants as zlibConstants, createGzip, type Gzip } from 'node:zlib';
import { ChunkWindow, RETRY_MAX_MS, RETRY_MIN_MS } from './chunk-window.js';
import type { RedisClient } from './client.js';
import { formatCrc, parseCrc } from './crc.js';
import { aborted, badFormat, corrupt, ErrorCodes, exists, isRetryable, RedisFileError, timeout, wrapRedisError } from './errors.js';
import { fileKeys, type FileKeys, Flag, memoryEventsKey, Meta } from './format.js';
import { MemoryGuard } from './memory-guard.js';
import { checkClientAndKey, resolveWriteOptions, type ResolvedWriteOptions, type WriteStreamOptions } from './options.js';
import { type Progress, ProgressTicker } from './progress.js';
import { ABORT, COMMIT, CREATE, RESUME, run, runAndWait, TOUCH, TRIM } from './scripts/index.js';

/** How long `destroy()` waits for the abort record to be stored before it lets go. */
const ABORT_WAIT_MS = 5000;
/**
 * Written through the stream by {@link RedisWriteStream.flush}, so that a flush comes in order
 * with the writes before it (as zlib's does); told apart from an empty write by identity.
 */
const FLUSH = Buffer.alloc(0);
/** The events of a {@link RedisWriteStream} beyond those of every Writable. */
export interface RedisWriteStream {
  /** The key is claimed and the file exists (in state `writing`): readers can open it now. */
  on(event: 'ready', listener: () => void): this;
  once(event: 'ready', listener: () => void): this;
  /** How many bytes Redis has acknowledged, at most once per `progressInterval`, and once at the end. */
  on(event: 'progress', listener: (progress: Progress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'progress', listener: (progress: Progress) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A Writable that stores what is written as a file in Redis. Create it with
 * {@link createRedisWriteStream}; the class is exported for types and `instanceof`.
 *
 * 'finish' fires only once every chunk and the end record are acknowledged by Redis.
 */
export class RedisWriteStream extends Writable {
  /** The file's key. */
  readonly key: string;
  readonly #client: RedisClient;
  readonly #opts: ResolvedWriteOptions;
  readonly #keys: FileKeys;
  readonly #writer = randomBytes(8).toString('hex');
  #gen = randomBytes(8).toString('hex');
  #chunksKey: string;
  #chunkSize: number;

  /** The chunk being filled, how much of it is filled, and how much of that was sent as pieces. */
  #buf: Buffer;
  #bufLen = 0;
  #flushedTo = 0;
  /** Sends the bytes not yet sent once the oldest of them is `flushInterval` old. */
  #flushTimer: NodeJS.Timeout | undefined;
  /**
   * Chunk buffers that Redis has stored for good, filled again instead of allocating new ones: a
   * fresh 256 KiB buffer per chunk costs page faults and garbage collections that show as CPU time.
   */
  readonly #spare: Buffer[] = [];
  /** The chunk writes, once the key is claimed. */
  #window: ChunkWindow | undefined;
  /** A write callback held back while the window is full. */
  #blocked: (() => void) | undefined;
  /** Called when the window empties or the stream fails. */
  #drained: (() => void) | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Ends a pause between retries at once when the stream is destroyed. */
  #wakePause: (() => void) | undefined;
  #encoding: string;
  #created = false;
  #creating: Promise<void> | undefined;
  #gzip: Gzip | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #touching = false;
  #committed = false;
  #failure: Error | undefined;
  readonly #progress: ProgressTicker;
  readonly #guard: MemoryGuard | undefined;
  /** The end record is on its way: an abort now is too late to take back, and is ignored. */
  #committing = false;
  readonly #onAbort = (): void => {
    if (!this.#committing) this.destroy(abortError(this.#opts.signal!));
  };

  /** @internal Use {@link createRedisWriteStream}. */
  constructor(client: RedisClient, key: string, opts: ResolvedWriteOptions) {
    super({ highWaterMark: opts.highWaterMark, decodeStrings: true, objectMode: false });
    this.key = key;
    this.#client = client;
    this.#opts = opts;
    this.#keys = fileKeys(opts.prefix, key);
    this.#chunksKey = this.#keys.chunks(this.#gen);
    this.#chunkSize = opts.chunkSize;
    this.#encoding = opts.contentEncoding ?? 'identity';
    this.#buf = Buffer.allocUnsafe(this.#chunkSize);
    this.#progress = new ProgressTicker(opts.progressInterval, (p) => this.emit('progress', p));
    if (opts.maxRedisMemory !== undefined) {
      // Consumers that are all done with the file (they failed on it, or gave it up) trim nothing
      // more of it: the writer trims what it writes after that itself.
      const relieve =
        opts.consumers === undefined
          ? undefined
          : async () => (await run(client, TRIM, { meta: this.#keys.meta, chunks: this.#chunksKey }, { gen: this.#gen, consumer: '', position: 0 })).trimmed > 0;
      this.#guard = new MemoryGuard(client, opts.maxRedisMemory, memoryEventsKey(opts.prefix), this.#keys.meta, relieve);
    }
    // Attached only now: an already aborted signal destroys the stream at once, and _destroy needs
    // the fields above.
    if (opts.signal?.aborted) this.destroy(abortError(opts.signal));
    else opts.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Bytes acknowledged by Redis so far (with `resume`, counting what was stored before). */
  get committedBytes(): number {
    return this.#window?.committedBytes ?? 0;
  }

  /** Chunks acknowledged by Redis so far. */
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
   * another writer's lease (seconds): wake that wait, so that destroy() and the signal take effect
   * at once at every point of the stream's life.
   */
  override destroy(error?: Error): this {
    super.destroy(error);
    this.#wakePause?.();
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
      this.#gzip.on('data', (data: Buffer) => {
        if (!this.#absorb(data)) this.#gzip!.pause();
      });
      this.#gzip.on('error', (err) => this.destroy(err));
    }
    // The file exists before the first write: 'ready' follows, and a reader opened then finds it.
    this.#create().then(() => callback(), callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (chunk === FLUSH) this.#flushNow(callback);
    else this.#input(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    // Buffered writes arrive together (the window was full): one callback for all of them, and each
    // copied straight into the chunks, without joining them into one buffer first.
    if (!this.#gzip && !this.#failure && !chunks.some(({ chunk }) => chunk === FLUSH)) {
      for (const { chunk } of chunks) this.#absorb(chunk);
      this.#whenRoom(callback);
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
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#stopHeartbeat();
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#flushTimer);
    this.#wakePause?.();
    this.#window?.stop();
    this.#guard?.close();
    this.#gzip?.destroy();
    this.#blocked = undefined;
    this.#failure ??= error ?? aborted(this.key, 'the writer was destroyed');
    this.#wake();
    // A claim still on its way may yet succeed: wait for it, so that the file it creates is marked
    // aborted instead of being left in state writing.
    const claimed = this.#creating?.catch(() => {}) ?? Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ABORT_WAIT_MS);
    });
    const abort = claimed.then(() => {
      if (!this.#created || this.#committed) return;
      const reason = error ? `${error.name}: ${error.message}` : 'the writer was destroyed';
      const whole = this.#window!.whole;
      return run(
        this.#client,
        ABORT,
        { meta: this.#keys.meta, chunks: this.#chunksKey },
        { writer: this.#writer, reason, size: whole.bytes, chunks: whole.chunks, crc32: formatCrc(whole.crc), lost: lostChunks(error) ? Flag.yes : Flag.no },
      );
    });
    // Readers must learn of the abort, but a dead connection must not keep the stream open forever.
    Promise.race([abort, wait])
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        callback(error);
      });
  }

  // ---------------------------------------------------------------------------------------------
  // Input

  #input(data: Buffer, callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    if (this.#gzip) {
      // The gzip's own write callback provides the backpressure: it only fires once the compressor
      // has consumed the input, which it stops doing while its output is paused.
      this.#gzip.write(data, (err) => callback(err ?? this.#failure));
      this.#armFlush();
      return;
    }
    this.#absorb(data);
    this.#whenRoom(callback);
  }

  #hasRoom(): boolean {
    return this.#window?.hasRoom() ?? true;
  }

  #whenRoom(callback: (error?: Error | null) => void): void {
    if (this.#failure) callback(this.#failure);
    else if (this.#hasRoom()) callback();
    else this.#blocked = () => callback(this.#failure);
  }

  /** Copy bytes into chunks and queue every full one. Returns whether the window has room. */
  #absorb(data: Buffer): boolean {
    const size = this.#chunkSize;
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(size - this.#bufLen, data.length - offset);
      data.copy(this.#buf, this.#bufLen, offset, offset + n);
      this.#bufLen += n;
      offset += n;
      if (this.#bufLen === size) {
        // The rest of the chunk after what flushes sent: the whole chunk when nothing was.
        this.#window!.queue(this.#flushedTo === 0 ? this.#buf : this.#buf.subarray(this.#flushedTo), this.#buf);
        this.#buf = this.#spare.pop() ?? Buffer.allocUnsafe(size);
        this.#bufLen = this.#flushedTo = 0;
        // Nothing is waiting to be sent any more: the flush interval starts again with new bytes.
        clearTimeout(this.#flushTimer);
        this.#flushTimer = undefined;
      }
    }
    this.#armFlush();
    return this.#hasRoom();
  }

  /** Start the flush interval when bytes wait to be sent and it is not running yet. */
  #armFlush(): void {
    const { flushInterval } = this.#opts;
    if (flushInterval === 0 || this.#flushTimer || (this.#bufLen === this.#flushedTo && !this.#gzip)) return;
    this.#flushTimer = setTimeout(() => this.#onFlushTimer(), flushInterval);
  }

  #onFlushTimer(): void {
    this.#flushTimer = undefined;
    if (this.#failure || this.#committing || this.destroyed) return;
    // Writes are queued behind a full window: the writer fills chunks faster than they are stored,
    // and its bytes go out as whole chunks without flushing.
    if (this.#blocked || this.writableLength > 0) {
      this.#armFlush();
      return;
    }
    if (this.#gzip) this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => this.#sendPartial());
    else this.#sendPartial();
  }

  /** Queue the bytes of the chunk being filled that were not sent yet, as a piece of it. */
  #sendPartial(): void {
    if (this.#failure || !this.#window || this.#bufLen === this.#flushedTo) return;
    this.#window.queue(this.#buf.subarray(this.#flushedTo, this.#bufLen));
    this.#flushedTo = this.#bufLen;
  }

  /** An explicit flush: send what waits, and call back once Redis has stored everything sent. */
  #flushNow(callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    const send = (): void => {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
      this.#sendPartial();
      if (this.#failure || (this.#window?.pending ?? 0) === 0) callback(this.#failure);
      else this.#drained = () => callback(this.#failure);
    };
    if (this.#gzip) this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, send);
    else send();
  }

  // ---------------------------------------------------------------------------------------------
  // Chunk writes

  /** Let a held write callback or the final flush go on, when there is room or a failure. */
  #wake(): void {
    if (this.#blocked && (this.#hasRoom() || this.#failure)) {
      const blocked = this.#blocked;
      this.#blocked = undefined;
      blocked();
    }
    if (this.#gzip?.isPaused() && this.#hasRoom()) this.#gzip.resume();
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
  // Lifecycle scripts

  /** Run a script, retrying with backoff while Redis refuses it for a passing reason. */
  async #script<T>(name: string, call: () => Promise<T>): Promise<T> {
    const start = Date.now();
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        return await call();
      } catch (err) {
        if (!isRetryable(err, this.#client) || Date.now() - start + delay > this.#opts.retryTimeout || this.destroyed) {
          throw wrapRedisError(err, this.key, name);
        }
      }
      await this.#pause(delay);
    }
  }

  /** Wait `ms`, or less when the stream is destroyed meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.destroyed) {
        resolve();
        return;
      }
      this.#wakePause = resolve;
      this.#retryTimer = setTimeout(resolve, ms);
    }).finally(() => {
      clearTimeout(this.#retryTimer);
      this.#wakePause = undefined;
    });
  }

  /**
   * The key is held by a writer whose lease has not lapsed yet. With `overwrite` or `resume`, a
   * writer that died moments ago (a supervisor restarts a crashed process at once) must not block
   * the key: wait until its lease would lapse, once, and try again; a holder that keeps its
   * heartbeat is still there then, and the claim fails.
   */
  async #waitOutLease(lapseIn: number, waited: boolean): Promise<boolean> {
    if (waited || !(this.#opts.overwrite || this.#opts.resume) || this.destroyed) return false;
    await this.#pause(Math.max(0, lapseIn) + 20);
    return !this.destroyed;
  }

  #create(): Promise<void> {
    this.#creating ??= this.#claim();
    return this.#creating;
  }

  async #claim(): Promise<void> {
    let waited = false;
    if (this.#opts.resume) {
      const resumed = await this.#resume();
      if (resumed) return;
    }
    const o = this.#opts;
    for (let attempt = 0; attempt < 10 && !this.destroyed; attempt++) {
      const reply = await this.#script('creating the file', async () => {
        const oldGen = await this.#client.hget(this.#keys.meta, Meta.gen);
        return run(
          this.#client,
          CREATE,
          { meta: this.#keys.meta, chunks: this.#chunksKey, events: this.#keys.events, old: oldGen ? this.#keys.chunks(oldGen) : this.#chunksKey },
          {
            gen: this.#gen,
            writer: this.#writer,
            overwrite: o.overwrite ? Flag.yes : Flag.no,
            oldGen: oldGen ?? '',
            chunkSize: this.#chunkSize,
            encoding: this.#encoding,
            contentType: o.contentType,
            metadata: JSON.stringify(o.metadata),
            ttl: o.ttl,
            hbi: o.heartbeatInterval,
            consumers: o.consumers === undefined ? '' : JSON.stringify(o.consumers),
            trim: o.maxRedisMemory === undefined ? Flag.no : Flag.yes,
          },
        );
      });
      switch (reply.status) {
        case 'ok':
          this.#started();
          return;
        case 'exists':
          throw exists(this.key, `a ${reply.state} file is stored at this key and \`overwrite\` is off`);
        case 'busy':
          if (!(await this.#waitOutLease(reply.lapseIn, waited))) {
            // Destroyed while waiting: nothing was claimed, and the stream says nothing more.
            if (this.destroyed) return;
            throw exists(this.key, 'another writer is writing this file (its heartbeat goes on)');
          }
          waited = true;
          break;
        case 'format':
          throw badFormat(this.key, `cannot write over this key: ${reply.detail}`);
        // 'retry': the file changed between reading its generation and the script; read again.
      }
    }
    if (this.destroyed) return;
    throw exists(this.key, 'the key keeps changing under concurrent writers');
  }

  /**
   * Take over a file whose writer is gone, continuing from the committed size that `stat`
   * reports. Returns false when there is no file, so that a new one is created.
   */
  async #resume(): Promise<boolean> {
    let waited = false;
    for (let attempt = 0; attempt < 10 && !this.destroyed; attempt++) {
      const reply = await this.#script('resuming the file', async () => {
        const gen = (await this.#client.hget(this.#keys.meta, Meta.gen)) ?? '';
        return run(
          this.#client,
          RESUME,
          { meta: this.#keys.meta, chunks: this.#keys.chunks(gen), events: this.#keys.events },
          { gen, writer: this.#writer, hbi: this.#opts.heartbeatInterval },
        );
      });
      switch (reply.status) {
        case 'missing':
          return false;
        case 'ok':
          this.#gen = reply.gen;
          this.#chunksKey = this.#keys.chunks(reply.gen);
          this.#chunkSize = Number(reply.chunkSize);
          this.#buf = Buffer.allocUnsafe(this.#chunkSize);
          this.#encoding = reply.encoding;
          this.#started();
          this.#window!.startAt(Number(reply.chunks), Number(reply.size), parseCrc(reply.crc32) ?? 0, reply.pieces, reply.last);
          return true;
        case 'busy':
          if (!(await this.#waitOutLease(reply.lapseIn, waited))) {
            if (this.destroyed) return true;
            throw exists(this.key, 'another writer is writing this file (its heartbeat goes on)');
          }
          waited = true;
          break;
        case 'finished':
          throw exists(this.key, 'the file is already complete: there is nothing to resume');
        case 'damaged':
          throw corrupt(this.key, 'cannot resume: Redis lost chunks of this file that it had acknowledged');
        case 'format':
          throw badFormat(this.key, `cannot resume this key: ${reply.detail}`);
      }
    }
    if (this.destroyed) return true;
    throw exists(this.key, 'the key keeps changing under concurrent writers');
  }

  #started(): void {
    this.#window = new ChunkWindow({
      client: this.#client,
      key: this.key,
      keys: this.#keys,
      chunksKey: this.#chunksKey,
      writer: this.#writer,
      chunkSize: this.#chunkSize,
      maxInFlight: this.#opts.maxInFlight,
      retryTimeout: this.#opts.retryTimeout,
      waitReplicas: this.#opts.waitReplicas,
      waitTimeout: this.#opts.waitTimeout,
      onAck: () => {
        this.#progress.tick(this.committedBytes, undefined);
        this.#wake();
      },
      onFail: (err) => this.#fail(err),
      // At most maxInFlight spares, so that one large write does not leave a large free list behind.
      release: (chunk) => {
        if (this.#spare.length < this.#opts.maxInFlight) this.#spare.push(chunk);
      },
      // Over the memory limit, chunks wait in the window, and the window's being full holds back
      // the writes: backpressure until memory is freed.
      admit: this.#guard ? (bytes) => this.#guard!.admit(bytes) : undefined,
    });
    this.#created = true;
    // Destroyed while claiming: _destroy aborts the file; no heartbeat may keep it alive.
    if (this.destroyed) return;
    this.#heartbeat = setInterval(() => this.#touch(), this.#opts.heartbeatInterval);
    // The heartbeat must not be what keeps a process alive.
    this.#heartbeat.unref();
    this.emit('ready');
  }

  async #finish(): Promise<void> {
    if (this.#gzip) {
      const gzip = this.#gzip;
      await new Promise<void>((resolve, reject) => {
        gzip.once('end', resolve);
        gzip.once('error', reject);
        gzip.end();
      });
    }
    if (this.#failure) throw this.#failure;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const window = this.#window!;
    this.#sendPartial();
    if (window.pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#failure) throw this.#failure;
    this.#stopHeartbeat();
    const cut = window.cut;
    // From here an abort no longer takes the upload back: what the stream reports must match what
    // Redis holds, and the end record may already be stored.
    this.#committing = true;
    const keys = { meta: this.#keys.meta, chunks: this.#chunksKey, events: this.#keys.events };
    const args = {
      writer: this.#writer,
      last: cut.last,
      pieces: cut.pieces,
      size: cut.bytes,
      chunks: cut.chunks,
      crc32: formatCrc(cut.crc),
      ttl: this.#opts.ttl,
    };
    const reply =
      this.#opts.waitReplicas > 0
        ? await this.#commitReplicated(keys, args)
        : await this.#script('committing the end record', () => run(this.#client, COMMIT, keys, args));
    if (reply.status === 'lease') throw aborted(this.key, 'the file was removed or taken over by another writer before it was complete');
    if (reply.status === 'corrupt') throw corrupt(this.key, `cannot commit: ${reply.detail}`);
    this.#committed = true;
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#progress.tick(cut.bytes, cut.bytes, true);
  }

  /**
   * Commit, then WAIT until `waitReplicas` replicas hold the end record. The commit is idempotent:
   * while too few replicas confirm, it runs again (and writes again), until `retryTimeout`.
   */
  async #commitReplicated(
    keys: Parameters<typeof run<'meta' | 'chunks' | 'events', string, unknown>>[2],
    args: Record<string, string | number>,
  ): Promise<Awaited<ReturnType<typeof COMMIT.decode>>> {
    const { waitReplicas, waitTimeout, retryTimeout } = this.#opts;
    const start = Date.now();
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      const { reply, replicas } = await this.#script('committing the end record', () =>
        runAndWait(this.#client, COMMIT, keys, args, waitReplicas, waitTimeout),
      );
      if (reply.status !== 'ok' || replicas >= waitReplicas) return reply;
      if (Date.now() - start + delay > retryTimeout || this.destroyed) {
        throw timeout(this.key, `the end record reached ${replicas} of ${waitReplicas} replicas (the file is complete on the primary)`);
      }
      await this.#pause(delay);
    }
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #touch(): void {
    if (this.#touching || this.#committed) return;
    this.#touching = true;
    const whole = this.#window!.whole;
    run(this.#client, TOUCH, { meta: this.#keys.meta }, { writer: this.#writer, size: whole.bytes, chunks: whole.chunks, crc32: formatCrc(whole.crc) })
      .then(({ held }) => {
        if (!held && this.#heartbeat) {
          this.#fail(aborted(this.key, 'the file was removed or taken over by another writer while being written'));
        }
      })
      // A missed heartbeat is not fatal: the next one, or the chunk writes, will fail clearly.
      .catch(() => {})
      .finally(() => (this.#touching = false));
  }
}

/** The error of an aborted stream, as Node's own streams give it. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

/**
 * Open a Writable that stores the written bytes as a file at `key`.
 *
 * Bytes are stored as numbered chunks of `chunkSize` (only the last may be shorter); 'finish' fires
 * once every chunk and the end record are acknowledged by Redis. Destroying or aborting the stream
 * marks the file aborted, so that a partial file never reads as complete.
 *
 * @param client - an ioredis `Redis` (or `Cluster`) connection, shared with the caller
 * @param key - the file's name
 * @throws TypeError / RangeError for bad arguments, at the call
 * @example
 * ```ts
 * await pipeline(fs.createReadStream('access.log.gz'), createRedisWriteStream(redis, 'logs/2026-11-30.gz'));
 * ```
 */
export function createRedisWriteStream(client: RedisClient, key: string, options?: WriteStreamOptions): RedisWriteStream {
  checkClientAndKey(client, key);
  return new RedisWriteStream(client, key, resolveWriteOptions(options));
}

/**
 * The writer failed because what Redis holds no longer matches what it acknowledged (chunks lost in
 * a failover): readers must then report the file corrupt, not merely aborted.
 */
function lostChunks(error: Error | null): boolean {
  return error instanceof RedisFileError && error.code === ErrorCodes.CORRUPT;
}
