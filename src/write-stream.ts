/**
 * The write stream: bytes in, numbered chunks of a fixed size out to a Redis stream.
 * @module
 */

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createGzip, type Gzip } from 'node:zlib';
import { ChunkWindow, RETRY_MAX_MS, RETRY_MIN_MS } from './chunk-window.js';
import type { RedisClient } from './client.js';
import { aborted, badFormat, corrupt, ErrorCodes, exists, isRetryable, RedisFileError, timeout, wrapRedisError } from './errors.js';
import { FORMAT_VERSION, type FileKeys, fileKeys, formatCrc, looksGzipped, memoryEventsKey } from './format.js';
import { MemoryGuard } from './memory-guard.js';
import { checkClientAndKey, resolveWriteOptions, type ResolvedWriteOptions, type WriteStreamOptions } from './options.js';
import { type Progress, ProgressTicker } from './progress.js';
import { ABORT, COMMIT, CREATE, RESUME, runScript, runScriptAndWait, TOUCH, TRIM } from './scripts.js';

/** How long `destroy()` waits for the abort record to be stored before it lets go. */
const ABORT_WAIT_MS = 5000;
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

  /** The chunk being filled. */
  #buf: Buffer;
  #bufLen = 0;
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
  #encoding: string | undefined;
  #created = false;
  #creating: Promise<void> | undefined;
  /** Bytes held before the file is created, while the encoding is still being detected. */
  #preamble: Buffer[] = [];
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
    this.#encoding = opts.contentEncoding;
    this.#buf = Buffer.allocUnsafe(this.#chunkSize);
    this.#progress = new ProgressTicker(opts.progressInterval, (p) => this.emit('progress', p));
    if (opts.maxRedisMemory !== undefined) {
      // Consumers that are all done with the file (they failed on it, or gave it up) trim nothing
      // more of it: the writer trims what it writes after that itself.
      const relieve = opts.consumers === undefined ? undefined : async () => Number(await runScript(client, TRIM, [this.#keys.meta, this.#chunksKey], [this.#gen, '', 0])) > 0;
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

  /** The content encoding the file is stored with (known once the first bytes are seen). */
  get contentEncoding(): string | undefined {
    return this.#encoding;
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
    // With an unknown encoding, creation waits for the first bytes: a reader must never see the
    // file before its encoding is settled. A resumed file already has one.
    if (this.#encoding === undefined && !this.#opts.resume) {
      callback();
      return;
    }
    this.#create().then(() => callback(), callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#input(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    // Buffered writes arrive together (the window was full): one callback for all of them, and each
    // copied straight into the chunks, without joining them into one buffer first.
    if (chunks.length > 1 && this.#created && !this.#gzip && !this.#failure) {
      for (const { chunk } of chunks) this.#absorb(chunk);
      this.#whenRoom(callback);
      return;
    }
    this.#input(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#stopHeartbeat();
    clearTimeout(this.#retryTimer);
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
      return runScript(
        this.#client,
        ABORT,
        [this.#keys.meta, this.#chunksKey],
        [this.#writer, reason, whole.bytes, whole.chunks, formatCrc(whole.crc), lostChunks(error) ? '1' : '0'],
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
      return;
    }
    if (!this.#created) {
      this.#preamble.push(data);
      const held = this.#preamble.reduce((n, b) => n + b.length, 0);
      if (held < 2) {
        callback();
        return;
      }
      this.#createFromPreamble().then(() => this.#whenRoom(callback), callback);
      return;
    }
    this.#absorb(data);
    this.#whenRoom(callback);
  }

  async #createFromPreamble(): Promise<void> {
    const held = Buffer.concat(this.#preamble);
    this.#preamble = [];
    this.#encoding = looksGzipped(held) ? 'gzip' : 'identity';
    await this.#create();
    this.#absorb(held);
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
        this.#window!.queue(this.#buf);
        this.#buf = this.#spare.pop() ?? Buffer.allocUnsafe(size);
        this.#bufLen = 0;
      }
    }
    return this.#hasRoom();
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
  async #script(name: string, run: () => Promise<unknown>): Promise<unknown> {
    const start = Date.now();
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        return await run();
      } catch (err) {
        if (!isRetryable(err, this.#client) || Date.now() - start + delay > this.#opts.retryTimeout || this.destroyed) {
          throw wrapRedisError(err, this.key, name);
        }
      }
      await new Promise<void>((resolve) => {
        this.#retryTimer = setTimeout(resolve, delay);
      });
    }
  }

  #create(): Promise<void> {
    this.#creating ??= this.#claim();
    return this.#creating;
  }

  async #claim(): Promise<void> {
    if (this.#opts.resume) {
      const resumed = await this.#resume();
      if (resumed) return;
    }
    const o = this.#opts;
    for (let attempt = 0; attempt < 10; attempt++) {
      const reply = await this.#script('creating the file', async () => {
        const oldGen = await this.#client.hget(this.#keys.meta, 'gen');
        return runScript(
          this.#client,
          CREATE,
          [this.#keys.meta, this.#keys.events, this.#chunksKey, oldGen ? this.#keys.chunks(oldGen) : this.#chunksKey],
          [
            FORMAT_VERSION,
            this.#gen,
            this.#writer,
            o.overwrite ? '1' : '0',
            oldGen ?? '',
            this.#chunkSize,
            this.#encoding ?? 'identity',
            o.contentType,
            JSON.stringify(o.metadata),
            o.ttl,
            o.heartbeatInterval,
            o.consumers === undefined ? '' : JSON.stringify(o.consumers),
            o.maxRedisMemory === undefined ? '0' : '1',
          ],
        );
      });
      const [status, detail] = reply as [string, string | undefined];
      if (status === 'ok') {
        this.#started();
        return;
      }
      if (status === 'exists') throw exists(this.key, `a ${detail} file is stored at this key and \`overwrite\` is off`);
      if (status === 'busy') throw exists(this.key, 'another writer is writing this file');
      if (status === 'format') throw badFormat(this.key, `cannot write over this key: ${detail}`);
      // 'retry': the file changed between reading its generation and the script; read again.
    }
    throw exists(this.key, 'the key keeps changing under concurrent writers');
  }

  /**
   * Take over a file whose writer is gone, continuing from the committed size that `stat`
   * reports. Returns false when there is no file, so that a new one is created.
   */
  async #resume(): Promise<boolean> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const reply = await this.#script('resuming the file', async () => {
        const gen = (await this.#client.hget(this.#keys.meta, 'gen')) ?? '';
        return runScript(
          this.#client,
          RESUME,
          [this.#keys.meta, this.#keys.chunks(gen), this.#keys.events],
          [FORMAT_VERSION, gen, this.#writer, this.#opts.heartbeatInterval],
        );
      });
      const [status, ...rest] = reply as string[];
      if (status === 'missing') return false;
      if (status === 'ok') {
        const [gen, chunkSize, chunks, size, crc, encoding] = rest as [string, string, string, string, string, string];
        this.#gen = gen;
        this.#chunksKey = this.#keys.chunks(gen);
        this.#chunkSize = Number(chunkSize);
        this.#buf = Buffer.allocUnsafe(this.#chunkSize);
        this.#encoding = encoding;
        this.#started();
        this.#window!.startAt(Number(chunks), Number(size), crc ? parseInt(crc, 16) : 0);
        return true;
      }
      if (status === 'busy') throw exists(this.key, 'another writer is writing this file');
      if (status === 'complete') throw exists(this.key, 'the file is already complete: there is nothing to resume');
      if (status === 'format') throw badFormat(this.key, `cannot resume this key: ${rest[0]}`);
    }
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
      // Only whole chunks: the short last one is a view of the buffer being filled. At most
      // maxInFlight spares, so that one large write does not leave a large free list behind.
      release: (data) => {
        if (data.length === this.#chunkSize && this.#spare.length < this.#opts.maxInFlight) this.#spare.push(data);
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
    if (!this.#created) await this.#createFromPreamble();
    const window = this.#window!;
    if (this.#bufLen > 0) {
      window.queue(this.#buf.subarray(0, this.#bufLen));
      this.#bufLen = 0;
    }
    if (window.pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#failure) throw this.#failure;
    this.#stopHeartbeat();
    const cut = window.cut;
    // From here an abort no longer takes the upload back: what the stream reports must match what
    // Redis holds, and the end record may already be stored.
    this.#committing = true;
    const keys = [this.#keys.meta, this.#chunksKey, this.#keys.events];
    const args = [this.#writer, cut.chunks, cut.bytes, formatCrc(cut.crc), this.#opts.ttl];
    const reply =
      this.#opts.waitReplicas > 0
        ? await this.#commitReplicated(keys, args)
        : await this.#script('committing the end record', () => runScript(this.#client, COMMIT, keys, args));
    const [status, detail] = reply as [string, string | undefined];
    if (status === 'lost') throw aborted(this.key, 'the file was removed or taken over by another writer before it was complete');
    if (status === 'corrupt') throw corrupt(this.key, `cannot commit: ${detail}`);
    this.#committed = true;
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#progress.tick(cut.bytes, cut.bytes, true);
  }

  /**
   * Commit, then WAIT until `waitReplicas` replicas hold the end record. The commit is idempotent:
   * while too few replicas confirm, it runs again (and writes again), until `retryTimeout`.
   */
  async #commitReplicated(keys: string[], args: (string | number)[]): Promise<unknown> {
    const { waitReplicas, waitTimeout, retryTimeout } = this.#opts;
    const start = Date.now();
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      const { reply, replicas } = (await this.#script('committing the end record', () =>
        runScriptAndWait(this.#client, COMMIT, keys, args, waitReplicas, waitTimeout),
      )) as { reply: unknown; replicas: number };
      if ((reply as string[])[0] !== 'ok' || replicas >= waitReplicas) return reply;
      if (Date.now() - start + delay > retryTimeout || this.destroyed) {
        throw timeout(this.key, `the end record reached ${replicas} of ${waitReplicas} replicas (the file is complete on the primary)`);
      }
      await new Promise<void>((resolve) => {
        this.#retryTimer = setTimeout(resolve, delay);
      });
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
    runScript(this.#client, TOUCH, [this.#keys.meta], [this.#writer, whole.bytes, whole.chunks, formatCrc(whole.crc)])
      .then((held) => {
        if (held === 0 && this.#heartbeat) {
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
