/**
 * The write stream: bytes in, numbered chunks of a fixed size out to a Redis stream.
 * @module
 */

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { addAbortSignal, Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { createGzip, type Gzip } from 'node:zlib';
import type { RedisClient } from './client.js';
import { aborted, badFormat, corrupt, exists, wrapRedisError } from './errors.js';
import { Field, FORMAT_VERSION, type FileKeys, fileKeys, looksGzipped, recordId } from './format.js';
import { checkClientAndKey, resolveWriteOptions, type ResolvedWriteOptions, type WriteStreamOptions } from './options.js';
import { ABORT, COMMIT, CREATE, runScript, TOUCH } from './scripts.js';

/** How long `destroy()` waits for the abort record to be stored before it lets go. */
const ABORT_WAIT_MS = 5000;

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
  readonly #gen = randomBytes(8).toString('hex');
  readonly #writer = randomBytes(8).toString('hex');
  readonly #chunksKey: string;

  /** The chunk being filled. */
  #buf: Buffer;
  #bufLen = 0;
  /** Number of the next chunk to send. */
  #next = 0;
  /** Bytes cut into chunks so far, and their running CRC-32. */
  #bytes = 0;
  #crc = 0;
  /** Chunks acknowledged by Redis, in order: the committed prefix. */
  #committedChunks = 0;
  #committedBytes = 0;
  readonly #acked = new Map<number, number>();
  #inFlight = 0;
  /** A write callback held back while the in-flight window is full. */
  #blocked: (() => void) | undefined;
  /** Resolves when nothing is in flight any more. */
  #drained: (() => void) | undefined;
  #encoding: string | undefined;
  #created = false;
  /** Bytes held before the file is created, while the encoding is still being detected. */
  #preamble: Buffer[] = [];
  #gzip: Gzip | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #touching = false;
  #committed = false;
  #failure: Error | undefined;

  /** @internal Use {@link createRedisWriteStream}. */
  constructor(client: RedisClient, key: string, opts: ResolvedWriteOptions) {
    super({ highWaterMark: opts.highWaterMark, decodeStrings: true, objectMode: false });
    this.key = key;
    this.#client = client;
    this.#opts = opts;
    this.#keys = fileKeys(opts.prefix, key);
    this.#chunksKey = this.#keys.chunks(this.#gen);
    this.#encoding = opts.contentEncoding;
    this.#buf = Buffer.allocUnsafe(opts.chunkSize);
    // Attached only now: an already aborted signal destroys the stream at once, and _destroy needs
    // the fields above.
    if (opts.signal) addAbortSignal(opts.signal, this);
  }

  /** Bytes acknowledged by Redis so far. */
  get committedBytes(): number {
    return this.#committedBytes;
  }

  /** Chunks acknowledged by Redis so far. */
  get committedChunks(): number {
    return this.#committedChunks;
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
    // file before its encoding is settled.
    if (this.#encoding === undefined) {
      callback();
      return;
    }
    this.#create().then(() => callback(), callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#input(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    // Buffered small writes arrive together: one copy into a single input costs less than a
    // callback round per write.
    this.#input(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stopHeartbeat();
    this.#gzip?.destroy();
    this.#blocked = undefined;
    if (!this.#created || this.#committed) {
      callback(error);
      return;
    }
    const reason = error ? `${error.name}: ${error.message}` : 'the writer was destroyed';
    let timer: NodeJS.Timeout | undefined;
    const abort = runScript(this.#client, ABORT, [this.#keys.meta, this.#chunksKey], [this.#writer, reason]);
    const wait = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ABORT_WAIT_MS);
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
      this.#createFromPreamble().then(() => this.#afterAbsorb(callback), callback);
      return;
    }
    if (this.#absorb(data)) callback();
    else this.#blocked = () => callback(this.#failure);
  }

  async #createFromPreamble(): Promise<void> {
    const held = Buffer.concat(this.#preamble);
    this.#preamble = [];
    this.#encoding = looksGzipped(held) ? 'gzip' : 'identity';
    await this.#create();
    this.#absorb(held);
  }

  #afterAbsorb(callback: (error?: Error | null) => void): void {
    if (this.#failure) callback(this.#failure);
    else if (this.#inFlight < this.#opts.maxInFlight) callback();
    else this.#blocked = () => callback(this.#failure);
  }

  /**
   * Copy bytes into chunks and send every full one. Returns false when the in-flight window is
   * full: the caller then waits for `#blocked` to be called.
   */
  #absorb(data: Buffer): boolean {
    const size = this.#opts.chunkSize;
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(size - this.#bufLen, data.length - offset);
      data.copy(this.#buf, this.#bufLen, offset, offset + n);
      this.#bufLen += n;
      offset += n;
      if (this.#bufLen === size) {
        this.#send(this.#buf);
        this.#buf = Buffer.allocUnsafe(size);
        this.#bufLen = 0;
      }
    }
    return this.#inFlight < this.#opts.maxInFlight;
  }

  #send(chunk: Buffer): void {
    const n = this.#next++;
    this.#bytes += chunk.length;
    this.#crc = crc32(chunk, this.#crc);
    this.#inFlight++;
    this.#client
      .xaddBuffer(this.#chunksKey, 'NOMKSTREAM', recordId(n), Field.data, chunk)
      .then(
        (id) => {
          if (id === null) throw aborted(this.key, 'the file was removed while it was being written');
        },
        (err: unknown) => this.#recoverWrite(err, n, chunk),
      )
      .then(
        () => this.#ack(n, chunk.length),
        (err: unknown) => this.#fail(wrapRedisError(err, this.key, `storing chunk ${n}`)),
      );
  }

  /**
   * ioredis re-sends commands that were unanswered when a connection dropped. If the first try did
   * reach Redis, the retry is refused because its id is not above the top id: then the chunk is
   * already stored, and is checked byte for byte instead of being stored twice.
   */
  async #recoverWrite(err: unknown, n: number, chunk: Buffer): Promise<void> {
    if (!(err instanceof Error) || !/equal or smaller than the target stream top item/.test(err.message)) throw err;
    const id = recordId(n);
    const found = await this.#client.xrangeBuffer(this.#chunksKey, id, id);
    const stored = found[0]?.[1];
    if (stored?.length === 2 && stored[0]!.toString() === Field.data && stored[1]!.equals(chunk)) return;
    throw corrupt(this.key, `chunk ${n} was refused by Redis and what is stored under its id differs`);
  }

  #ack(n: number, size: number): void {
    this.#inFlight--;
    this.#acked.set(n, size);
    while (this.#acked.has(this.#committedChunks)) {
      this.#committedBytes += this.#acked.get(this.#committedChunks)!;
      this.#acked.delete(this.#committedChunks);
      this.#committedChunks++;
    }
    if (this.#inFlight < this.#opts.maxInFlight) this.#release();
  }

  #release(): void {
    if (this.#inFlight < this.#opts.maxInFlight && this.#blocked) {
      const blocked = this.#blocked;
      this.#blocked = undefined;
      blocked();
    }
    if (this.#gzip?.isPaused() && this.#inFlight < this.#opts.maxInFlight) this.#gzip.resume();
    if ((this.#inFlight === 0 || this.#failure) && this.#drained) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }

  #fail(err: Error): void {
    this.#inFlight--;
    if (this.#failure) return;
    this.#failure = err;
    this.#release();
    this.destroy(err);
  }

  async #create(): Promise<void> {
    const o = this.#opts;
    for (let attempt = 0; attempt < 10; attempt++) {
      let oldGen: string | null;
      let reply: unknown;
      try {
        oldGen = await this.#client.hget(this.#keys.meta, 'gen');
        reply = await runScript(
          this.#client,
          CREATE,
          [this.#keys.meta, this.#keys.events, this.#chunksKey, oldGen ? this.#keys.chunks(oldGen) : this.#chunksKey],
          [
            FORMAT_VERSION,
            this.#gen,
            this.#writer,
            o.overwrite ? '1' : '0',
            oldGen ?? '',
            o.chunkSize,
            this.#encoding ?? 'identity',
            o.contentType,
            JSON.stringify(o.metadata),
            o.ttl,
            o.heartbeatInterval,
          ],
        );
      } catch (err) {
        throw wrapRedisError(err, this.key, 'creating the file');
      }
      const [status, detail] = reply as [string, string | undefined];
      if (status === 'ok') {
        this.#created = true;
        this.#startHeartbeat();
        return;
      }
      if (status === 'exists') throw exists(this.key, `a ${detail} file is stored at this key and \`overwrite\` is off`);
      if (status === 'busy') throw exists(this.key, 'another writer is writing this file');
      if (status === 'format') throw badFormat(this.key, `cannot write over this key: ${detail}`);
      // 'retry': the file changed between reading its generation and the script; read again.
    }
    throw exists(this.key, 'the key keeps changing under concurrent writers');
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
    if (this.#bufLen > 0) {
      this.#send(this.#buf.subarray(0, this.#bufLen));
      this.#bufLen = 0;
    }
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#failure) throw this.#failure;
    this.#stopHeartbeat();
    let reply: unknown;
    try {
      reply = await runScript(
        this.#client,
        COMMIT,
        [this.#keys.meta, this.#chunksKey, this.#keys.events],
        [this.#writer, this.#next, this.#bytes, this.#crc.toString(16).padStart(8, '0'), this.#opts.ttl],
      );
    } catch (err) {
      throw wrapRedisError(err, this.key, 'committing the end record');
    }
    const [status, detail] = reply as [string, string | undefined];
    if (status === 'lost') throw aborted(this.key, 'the file was removed or taken over by another writer before it was complete');
    if (status === 'corrupt') {
      throw corrupt(this.key, `expected chunk ${this.#next - 1} last before the end record, found entry ${detail}`);
    }
    this.#committed = true;
  }

  #startHeartbeat(): void {
    this.#heartbeat = setInterval(() => this.#touch(), this.#opts.heartbeatInterval);
    // The heartbeat must not be what keeps a process alive.
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #touch(): void {
    if (this.#touching || this.#committed) return;
    this.#touching = true;
    runScript(this.#client, TOUCH, [this.#keys.meta], [this.#writer, this.#committedBytes, this.#committedChunks])
      .then((held) => {
        if (held === 0 && this.#heartbeat) {
          this.destroy(aborted(this.key, 'the file was removed or taken over by another writer while being written'));
        }
      })
      // A missed heartbeat is not fatal: the next one, or the chunk writes, will fail clearly.
      .catch(() => {})
      .finally(() => (this.#touching = false));
  }
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
