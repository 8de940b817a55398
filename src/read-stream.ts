/**
 * The read stream: a stored file's chunks, checked in order, out as bytes.
 * @module
 */

import type { Buffer } from 'node:buffer';
import { addAbortSignal, Readable } from 'node:stream';
import { createGunzip, crc32, type Gunzip } from 'node:zlib';
import { closeConnection, openBlockingConnection, type RedisClient } from './client.js';
import { RETRY_MAX_MS, RETRY_MIN_MS } from './chunk-window.js';
import { aborted, badFormat, corrupt, decodeFailed, isRetryable, notFound, outOfRange, timeout, wrapRedisError } from './errors.js';
import {
  decodeEntry,
  type Entry,
  Event,
  type FileKeys,
  fileKeys,
  formatCrc,
  HEADER_ID,
  memoryEventsKey,
  Meta,
  type MetaRecord,
  parseMeta,
  recordId,
} from './format.js';
import { checkClientAndKey, type ReadStreamOptions, resolveReadOptions, type ResolvedReadOptions } from './options.js';
import { announceFreed } from './memory-guard.js';
import { ABANDON, ACK, JOIN, runScript, TRIM } from './scripts.js';
import { type Progress, ProgressTicker } from './progress.js';
import { ConsumedChunks } from './consumed.js';

/**
 * Longest single blocking wait. Between waits the reader checks that the file still exists and
 * that its writer is alive: an expired key or a server restarted without persistence sends no
 * event, so this bounds how late such a loss is noticed.
 */
const LIVENESS_INTERVAL_MS = 1000;

type RawEntry = [Buffer, Buffer[]];

/** The events of a {@link RedisReadStream} beyond those of every Readable. */
export interface RedisReadStream {
  /** How many bytes were delivered, at most once per `progressInterval`, and once at the end. */
  on(event: 'progress', listener: (progress: Progress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'progress', listener: (progress: Progress) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A Readable that yields a stored file's bytes, in order, checking every chunk. Create it with
 * {@link createRedisReadStream}; the class is exported for types and `instanceof`.
 */
export class RedisReadStream extends Readable {
  /** The file's key. */
  readonly key: string;
  readonly #client: RedisClient;
  readonly #opts: ResolvedReadOptions;
  readonly #keys: FileKeys;
  #meta!: MetaRecord;
  #chunksKey = '';
  #blocking: RedisClient | undefined;

  /** Number of the next chunk expected, and the file offset it starts at. */
  #next = 0;
  #pos = 0;
  /** A chunk shorter than the chunk size was seen: only the end record may follow. */
  #sawShort = false;
  /** Running CRC-32 of the whole file, when the read started at its first byte. */
  #crc: number | undefined;
  #lastEventId = '0-0';
  #lastHeartbeat: string | null = null;
  #lastProgress = 0;
  /** When a gap in the chunk numbers was first met (0: none). */
  #gapSince = 0;
  /** The last read reached the stored tail: wait with blocking reads from now on. */
  #atTail = false;
  /** Whether to wait for the writer: only while the file is not complete. */
  #follow = true;
  #pumping = false;
  #wanted = false;
  /** The batch after the one being consumed, already requested. */
  #prefetched: { from: number; entries: Promise<RawEntry[]> } | undefined;
  #done = false;
  /** Since when Redis has been unavailable for a passing reason (0: it is not), and the retry timer. */
  #troubleSince = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #delivered = 0;
  /** The whole file was read, up to and including its checked end record. */
  #readToEnd = false;
  #gunzip: Gunzip | undefined;
  readonly #progress: ProgressTicker;
  /** A consumer of a file that is trimmed: how far the application has consumed, and reported. */
  #consumed: ConsumedChunks | undefined;
  #reported = 0;
  #reporting: Promise<void> | undefined;

  /** @internal Use {@link createRedisReadStream}. */
  constructor(client: RedisClient, key: string, opts: ResolvedReadOptions) {
    super({ highWaterMark: opts.highWaterMark });
    this.key = key;
    this.#client = client;
    this.#opts = opts;
    this.#keys = fileKeys(opts.prefix, key);
    this.#progress = new ProgressTicker(opts.progressInterval, (p) => this.emit('progress', p));
    // Attached only now: an already aborted signal destroys the stream at once, and _destroy needs
    // the fields above.
    if (opts.signal) addAbortSignal(opts.signal, this);
  }

  /** Stored bytes delivered so far (before decompression). */
  get deliveredBytes(): number {
    return this.#delivered;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.destroyed) {
      callback();
      return;
    }
    this.#openRetrying().then(() => callback(), callback);
  }

  override _read(): void {
    this.#wanted = true;
    if (this.#gunzip?.isPaused()) this.#gunzip.resume();
    if (!this.#pumping && !this.#done) void this.#pump();
    // The application is taking bytes out: a consumer's position may move. Readable calls _read
    // before it removes them from its buffer, hence the report once read() is done.
    else if (this.#consumed) queueMicrotask(() => this.#reportPosition().catch((err: unknown) => this.destroy(err as Error)));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#done = true;
    clearTimeout(this.#retryTimer);
    this.#retryResume?.();
    this.#gunzip?.destroy();
    // Frees the blocking connection at once; its pending XREAD is dropped with it.
    closeConnection(this.#blocking);
    this.#blocking = undefined;
    callback(error);
  }

  // ---------------------------------------------------------------------------------------------

  async #openRetrying(): Promise<void> {
    for (;;) {
      try {
        await this.#open();
        this.#troubleSince = 0;
        return;
      } catch (err) {
        if (!(await this.#retryLater(err))) throw err;
      }
    }
  }

  async #open(): Promise<void> {
    const deadline = Date.now() + this.#opts.waitForCreate;
    for (;;) {
      let rawMeta: Record<string, string>;
      let lastEvent: [string, string[]][];
      try {
        // The event position first, then the metadata: a file created in between is seen by the
        // second read, and one created after it logs an event past the position. No transaction
        // needed (a transaction cut by a dropped connection is not re-sent).
        lastEvent = (await this.#client.xrevrange(this.#keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][];
        rawMeta = await this.#client.hgetall(this.#keys.meta);
      } catch (err) {
        throw wrapRedisError(err, this.key, 'reading the metadata');
      }
      this.#lastEventId = lastEvent[0]?.[0] ?? '0-0';
      const meta = parseMeta(rawMeta);
      if (typeof meta === 'string') throw badFormat(this.key, meta);
      if (meta !== undefined) {
        this.#start(meta);
        await this.#join();
        return;
      }
      if (this.#opts.waitForCreate === 0) throw notFound(this.key);
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw timeout(this.key, `no file appeared at this key within waitForCreate (${this.#opts.waitForCreate} ms)`);
      }
      try {
        await this.#blockingConnection().xread('BLOCK', remaining, 'STREAMS', this.#keys.events, this.#lastEventId);
      } catch (err) {
        throw wrapRedisError(err, this.key, 'waiting for the file to be created');
      }
      if (this.destroyed) return;
    }
  }

  #start(meta: MetaRecord): void {
    if (meta.state === 'aborted') throw this.#abortedError(meta.lost);
    const { decompress } = this.#opts;
    if (meta.state === 'complete') this.#checkRange(meta.size);
    this.#meta = meta;
    this.#follow = this.#opts.follow && meta.state === 'writing';
    this.#chunksKey = this.#keys.chunks(meta.gen);
    this.#next = Math.floor(this.#opts.start / meta.chunkSize);
    if (meta.trimmed > this.#next) throw this.#trimmedError(meta.trimmed);
    if (decompress && meta.encoding === 'gzip' && this.#next > 0) {
      throw notFound(this.key, `it starts at chunk ${this.#next} (the chunks before it were trimmed once every consumer had passed them), and gzip cannot be decompressed from the middle`);
    }
    this.#pos = this.#next * meta.chunkSize;
    this.#crc = this.#next === 0 && this.#opts.checksum ? 0 : undefined;
    this.#lastHeartbeat = String(meta.heartbeat);
    this.#lastProgress = Date.now();
    if (decompress && meta.encoding === 'gzip') {
      const gunzip = createGunzip();
      gunzip.on('data', (data: Buffer) => {
        this.#consumed?.pushed(data.length);
        if (!this.push(data)) gunzip.pause();
      });
      gunzip.on('end', () => this.#end());
      gunzip.on('error', (err) => this.destroy(decodeFailed(this.key, err)));
      this.#gunzip = gunzip;
    }
    if (this.#opts.consumer !== undefined && meta.trim) {
      this.#consumed = new ConsumedChunks(meta.chunkSize, this.#opts.start, this.#gunzip !== undefined);
    }
  }

  /**
   * A consumer of a file that is trimmed records where it starts, so that nothing it still needs
   * is trimmed under it (a restarted consumer may have recorded a later position before).
   */
  async #join(): Promise<void> {
    if (!this.#consumed) return;
    let reply: unknown;
    try {
      reply = await runScript(this.#client, JOIN, [this.#keys.meta], [this.#meta.gen, this.#opts.consumer!, this.#next, '0']);
    } catch (err) {
      throw wrapRedisError(err, this.key, `recording the position of consumer ${JSON.stringify(this.#opts.consumer)}`);
    }
    const [status, detail] = reply as [string, number];
    if (status === 'missing') throw notFound(this.key, 'the file was removed, replaced or expired while being opened');
    if (status === 'trimmed') throw this.#trimmedError(detail);
    this.#reported = this.#next;
  }

  #abortedError(lost: boolean): Error {
    return lost
      ? corrupt(this.key, 'Redis lost chunks that it had acknowledged to the writer (a replica without them took over from a failed primary), and the writer aborted')
      : aborted(this.key, 'the writer aborted this file before it was complete');
  }

  #trimmedError(trimmed: number): Error {
    return notFound(this.key, `chunks 0 to ${trimmed - 1} were trimmed once every consumer had read them; this read needs chunk ${this.#next}`);
  }

  #blockingConnection(): RedisClient {
    this.#blocking ??= openBlockingConnection(this.#client);
    return this.#blocking;
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#wanted && !this.#done) {
        let entries: Entry[];
        try {
          entries = await this.#fetch();
          this.#troubleSince = 0;
        } catch (err) {
          if (await this.#retryLater(err)) continue;
          throw err;
        }
        for (const entry of entries) {
          if (this.#done) break;
          if (entry.n > this.#next) {
            await this.#waitOutGap(entry.n);
            break;
          }
          this.#gapSince = 0;
          this.#consume(entry);
        }
        if (this.#gunzip?.writableNeedDrain && !this.#done) await drainOrClose(this.#gunzip);
        if (entries.length > 0) await this.#reportPosition();
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.#pumping = false;
    }
  }

  #retryResume: (() => void) | undefined;

  /**
   * Redis refused a read for a passing reason: a cluster failing over (its node for this file is
   * gone and no replica has taken over yet), loading, busy. Wait and let the caller read again from
   * the same chunk, for at most `idleTimeout` in all. Resolves to false when the error is final.
   */
  async #retryLater(err: unknown): Promise<boolean> {
    if (this.#done || !isRetryable((err as { cause?: unknown }).cause ?? err, this.#client)) return false;
    this.#troubleSince ||= Date.now();
    const waited = Date.now() - this.#troubleSince;
    if (waited >= this.#opts.idleTimeout) return false;
    this.#prefetched = undefined;
    await new Promise<void>((resolve) => {
      this.#retryResume = resolve;
      this.#retryTimer = setTimeout(resolve, Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, waited / 2), this.#opts.idleTimeout - waited));
    });
    this.#retryResume = undefined;
    return !this.#done;
  }

  /** The next entries, waiting for the writer when following. An empty result means "look again". */
  async #fetch(): Promise<Entry[]> {
    const { readAhead } = this.#opts;
    const { chunkSize } = this.#meta;
    const follow = this.#follow;
    if (!(follow && this.#atTail)) {
      const prefetched = this.#prefetched?.from === this.#next ? this.#prefetched.entries : undefined;
      this.#prefetched = undefined;
      const raw = await (prefetched ?? this.#range(this.#next));
      if (raw.length === readAhead) {
        // Ask for the next batch now, so that Redis works while this one is consumed. One batch
        // ahead at most: the read-ahead stays bounded.
        const from = this.#next + readAhead;
        if (from * chunkSize <= this.#opts.end) {
          const entries = this.#range(from);
          entries.catch(() => {});
          this.#prefetched = { from, entries };
        }
        return raw.map(([id, fields]) => decodeEntry(id, fields));
      }
      this.#atTail = true;
      if (raw.length > 0) return raw.map(([id, fields]) => decodeEntry(id, fields));
      if (!follow) {
        if (!(await this.#checkFile(false)) && !this.#done) this.#finish();
        return [];
      }
    }
    return this.#waitForEntries();
  }

  async #range(from: number): Promise<RawEntry[]> {
    try {
      return await this.#client.xrangeBuffer(this.#chunksKey, recordId(from), '+', 'COUNT', this.#opts.readAhead);
    } catch (err) {
      throw wrapRedisError(err, this.key, `reading from chunk ${from}`);
    }
  }

  async #waitForEntries(): Promise<Entry[]> {
    // A consumer at the tail may have consumed more since it last reported: a writer held back by
    // a memory limit may be waiting for exactly that.
    await this.#reportPosition();
    const { readAhead, idleTimeout } = this.#opts;
    const idleLeft = idleTimeout - (Date.now() - this.#lastProgress);
    const block = Math.max(1, Math.min(LIVENESS_INTERVAL_MS, idleLeft));
    const after = this.#next === 0 ? HEADER_ID : recordId(this.#next - 1);
    let reply: [Buffer, RawEntry[]][] | null;
    try {
      reply = (await this.#blockingConnection().xreadBuffer(
        'COUNT',
        readAhead,
        'BLOCK',
        block,
        'STREAMS',
        this.#chunksKey,
        this.#keys.events,
        after,
        this.#lastEventId,
      )) as [Buffer, RawEntry[]][] | null;
    } catch (err) {
      if (this.#done) return [];
      throw wrapRedisError(err, this.key, `waiting for chunk ${this.#next}`);
    }
    if (this.#done) return [];
    let entries: Entry[] = [];
    for (const [streamKey, items] of streamsOf(reply)) {
      if (streamKey.toString() === this.#keys.events) this.#onEvents(items);
      else entries = items.map(([id, fields]) => decodeEntry(id, fields));
    }
    if (entries.length > 0) {
      this.#lastProgress = Date.now();
      return entries;
    }
    if (reply === null) await this.#checkFile(true);
    return [];
  }

  #onEvents(items: RawEntry[]): void {
    for (const [id, fields] of items) {
      this.#lastEventId = id.toString();
      const name = fields[0]?.toString();
      const gen = fields[1]?.toString();
      if (name === Event.removed && gen === this.#meta.gen) throw notFound(this.key, 'the file was removed while being read');
      if (name === Event.created && gen !== this.#meta.gen) throw notFound(this.key, 'the file was replaced while being read');
    }
  }

  /**
   * A consumer of a file whose writer keeps Redis under a memory limit reports how far the
   * application has consumed (not what was fetched and is still buffered), so that chunks every
   * consumer has passed can be trimmed; freed memory wakes held-back writers. One report at a time.
   */
  #reportPosition(): Promise<void> {
    if (!this.#consumed || this.#done) return Promise.resolve();
    this.#reporting ??= this.#report().finally(() => (this.#reporting = undefined));
    return this.#reporting;
  }

  async #report(): Promise<void> {
    const consumer = this.#opts.consumer!;
    const consumed = this.#consumed!;
    for (let at = consumed.chunks(this.readableLength, this.readableEncoding); at > this.#reported && !this.#done; ) {
      let trimmed: unknown;
      try {
        trimmed = await runScript(this.#client, TRIM, [this.#keys.meta, this.#chunksKey], [this.#meta.gen, consumer, at]);
      } catch (err) {
        throw wrapRedisError(err, this.key, `reporting the position of consumer ${JSON.stringify(consumer)}`);
      }
      this.#reported = at;
      if (typeof trimmed === 'number' && trimmed > 0) await announceFreed(this.#client, memoryEventsKey(this.#opts.prefix), this.key);
      at = consumed.chunks(this.readableLength, this.readableEncoding);
    }
  }

  /**
   * Record `found` came where record `#next` was expected. While the file is being written this
   * can be passing: after Redis refused a chunk (out of memory), later chunks may be stored before
   * the writer deletes them and writes again from the refused one, announcing it with a `repaired`
   * event. So wait for an event (or the liveness interval) and read again; a gap that outlasts
   * `idleTimeout`, or in a file no longer being written, is corruption.
   */
  async #waitOutGap(found: number): Promise<void> {
    const gap = corrupt(this.key, `expected chunk ${this.#next}, found record ${found}: chunk ${this.#next} is missing`);
    this.#gapSince ||= Date.now();
    const waited = Date.now() - this.#gapSince;
    let state: string | null, trimmed: string | null;
    try {
      [state, trimmed] = await this.#client.hmget(this.#keys.meta, Meta.state, Meta.trimmed);
    } catch (err) {
      throw wrapRedisError(err, this.key, 'checking the file');
    }
    if (Number(trimmed ?? 0) > this.#next) throw this.#trimmedError(Number(trimmed));
    if (state === 'aborted') throw aborted(this.key, 'the writer aborted this file before it was complete');
    if (state !== 'writing' || waited >= this.#opts.idleTimeout) throw gap;
    this.#atTail = false;
    this.#prefetched = undefined;
    const block = Math.max(1, Math.min(LIVENESS_INTERVAL_MS, this.#opts.idleTimeout - waited));
    let reply: [Buffer, RawEntry[]][] | null;
    try {
      reply = (await this.#blockingConnection().xreadBuffer('BLOCK', block, 'STREAMS', this.#keys.events, this.#lastEventId)) as
        | [Buffer, RawEntry[]][]
        | null;
    } catch (err) {
      if (this.#done) return;
      throw wrapRedisError(err, this.key, `waiting for chunk ${this.#next}`);
    }
    for (const [, items] of streamsOf(reply)) this.#onEvents(items);
  }

  /**
   * Nothing new arrived: make sure the file is still there, that a complete file's entries are not
   * missing, and (when following) that the writer is still alive. Returns true when entries are
   * waiting to be read after all.
   */
  async #checkFile(following: boolean): Promise<boolean> {
    let gen: string | null, state: string | null, heartbeat: string | null, lost: string | null, streamExists: number;
    try {
      [[gen, state, heartbeat, lost], streamExists] = await Promise.all([
        this.#client.hmget(this.#keys.meta, Meta.gen, Meta.state, Meta.heartbeat, Meta.lost),
        this.#client.exists(this.#chunksKey),
      ]);
    } catch (err) {
      throw wrapRedisError(err, this.key, 'checking the file');
    }
    if (this.#done) return false;
    if (gen !== this.#meta.gen) throw notFound(this.key, 'the file was removed, replaced or expired while being read');
    // The metadata is there but the chunks are not: evicted under memory pressure, or lost.
    if (streamExists === 0) throw corrupt(this.key, 'its chunk stream is gone (evicted or deleted) while its metadata remains');
    if (state === 'aborted') throw this.#abortedError(lost === '1');
    if (state === 'complete') {
      // The end record is stored in the same step as the state: it must be readable now.
      const raw = await this.#client.xrangeBuffer(this.#chunksKey, recordId(this.#next), '+', 'COUNT', 1);
      if (raw.length === 0) throw corrupt(this.key, `the file is complete but nothing is stored from chunk ${this.#next} on`);
      this.#atTail = false;
      return true;
    }
    if (!following) return false;
    if (heartbeat !== this.#lastHeartbeat) {
      this.#lastHeartbeat = heartbeat;
      this.#lastProgress = Date.now();
    } else if (this.#opts.abandonStale && Date.now() - this.#lastProgress > 3 * this.#meta.heartbeatInterval) {
      await this.#abandon();
    } else if (Date.now() - this.#lastProgress >= this.#opts.idleTimeout) {
      throw timeout(this.key, `the writer made no progress for idleTimeout (${this.#opts.idleTimeout} ms)`);
    }
    return false;
  }

  /**
   * The writer has been silent for three heartbeat intervals: when the server agrees that its
   * lease is stale, the file is marked aborted for every reader, this one first.
   */
  async #abandon(): Promise<void> {
    const reason = `its writer stopped: no heartbeat for ${3 * this.#meta.heartbeatInterval} ms (three intervals), so its lease lapsed`;
    let reply: unknown;
    try {
      reply = await runScript(this.#client, ABANDON, [this.#keys.meta, this.#chunksKey], [this.#meta.gen, reason]);
    } catch (err) {
      throw wrapRedisError(err, this.key, 'marking the file of a dead writer aborted');
    }
    const [status] = reply as [string];
    if (status === 'aborted') throw aborted(this.key, `the file was marked aborted: ${reason}`);
    if (status === 'missing') throw notFound(this.key, 'the file was removed, replaced or expired while being read');
    // 'alive': a heartbeat came just now, which the next check sees; 'state': the file was
    // completed or aborted meanwhile, which the next read shows.
  }

  #consume(entry: Entry): void {
    const { chunkSize } = this.#meta;
    if (entry.n !== this.#next) {
      throw corrupt(this.key, `expected record ${this.#next}, found ${entry.kind === 'unknown' ? entry.id : `record ${entry.n}`}`);
    }
    switch (entry.kind) {
      case 'chunk': {
        const { data } = entry;
        if (this.#sawShort) throw corrupt(this.key, `chunk ${entry.n - 1} is short but is not the last chunk`);
        if (data.length === 0 || data.length > chunkSize) {
          throw corrupt(this.key, `chunk ${entry.n} holds ${data.length} bytes; the chunk size is ${chunkSize}`);
        }
        if (data.length < chunkSize) this.#sawShort = true;
        if (this.#crc !== undefined) this.#crc = crc32(data, this.#crc);
        const chunkStart = this.#pos;
        this.#pos += data.length;
        this.#next++;
        const from = Math.max(this.#opts.start - chunkStart, 0);
        const to = Math.min(this.#opts.end + 1 - chunkStart, data.length);
        if (from < to) this.#deliver(from === 0 && to === data.length ? data : data.subarray(from, to));
        if (this.#pos > this.#opts.end) this.#finish();
        return;
      }
      case 'end': {
        this.#readToEnd = this.#opts.start === 0;
        if (entry.size !== this.#pos || entry.chunks !== entry.n) {
          throw corrupt(this.key, `the end record says ${entry.size} bytes in ${entry.chunks} chunks; read ${this.#pos} bytes in ${entry.n}`);
        }
        if (this.#crc !== undefined && entry.crc32 !== undefined && entry.crc32 !== formatCrc(this.#crc)) {
          throw corrupt(this.key, `checksum mismatch: the end record says crc32 ${entry.crc32}, the chunks give ${formatCrc(this.#crc)}`);
        }
        this.#checkRange(entry.size);
        this.#finish();
        return;
      }
      case 'abort':
        throw aborted(this.key, `the writer aborted this file before it was complete (${entry.reason})`);
      default:
        throw corrupt(this.key, `unexpected entry in the chunk stream at record ${this.#next}`);
    }
  }

  /** A range reaching past the end of the file is an error, never a silently short read. */
  #checkRange(size: number): void {
    const { start, end } = this.#opts;
    if (start > size) throw outOfRange(this.key, `\`start\` is ${start} but the file holds ${size} bytes`);
    if (end !== Infinity && end >= size) {
      throw outOfRange(this.key, `\`end\` is ${end} but the file holds ${size} bytes (the last offset is ${size - 1})`);
    }
  }

  #deliver(bytes: Buffer): void {
    this.#delivered += bytes.length;
    this.#progress.tick(this.#delivered, this.#total());
    if (this.#gunzip) {
      const gunzip = this.#gunzip;
      const through = this.#next;
      const consumed = this.#consumed;
      gunzip.write(bytes, consumed && (() => consumed.decoded(through, gunzip.readableLength)));
    } else {
      this.#consumed?.pushed(bytes.length);
      if (!this.push(bytes)) this.#wanted = false;
    }
  }

  /** The size of the file, once known: what a full read will deliver. */
  #total(): number | undefined {
    return this.#meta.state === 'complete' ? this.#meta.size : undefined;
  }

  #finish(): void {
    this.#done = true;
    this.#progress.tick(this.#delivered, this.#total() ?? this.#pos, true);
    closeConnection(this.#blocking);
    this.#blocking = undefined;
    if (this.#gunzip) this.#gunzip.end();
    else this.#end();
  }

  /**
   * The last bytes are out (and decoded): a consumer acknowledges the file, then the stream ends.
   * Only a read of the whole file, checked by its end record, counts.
   */
  #end(): void {
    const consumer = this.#opts.consumer;
    if (consumer === undefined || !this.#readToEnd || !this.#opts.ackAtEnd) {
      this.push(null);
      return;
    }
    runScript(this.#client, ACK, [this.#keys.meta, this.#chunksKey, this.#keys.events], [this.#meta.gen, consumer]).then(
      async (reply) => {
        const [status, detail] = reply as [string, string | number];
        if (status === 'missing') throw notFound(this.key, 'the file was removed before this consumer acknowledged it');
        if (status === 'state') throw aborted(this.key, `cannot acknowledge a file in state ${detail}`);
        if (status === 'deleted' && this.#meta.trim) await announceFreed(this.#client, memoryEventsKey(this.#opts.prefix), this.key);
        this.push(null);
      },
      (err: unknown) => {
        throw wrapRedisError(err, this.key, `acknowledging as consumer ${JSON.stringify(consumer)}`);
      },
    ).catch((err: unknown) => this.destroy(err as Error));
  }
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

/** Resolve when a writable drains, or when it is closed (a destroyed stream never drains). */
function drainOrClose(stream: Gunzip): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/**
 * Open a Readable that yields the bytes of the file stored at `key`, exactly and in order.
 *
 * While the file is being written the reader follows it with blocking reads on a connection of its
 * own (set `follow: false` to stop at what is stored now). Every chunk is checked: its number, its
 * size, and for a full read the checksum in the end record.
 *
 * @param client - an ioredis `Redis` (or `Cluster`) connection, shared with the caller
 * @param key - the file's name
 * @throws TypeError / RangeError for bad arguments, at the call
 * @example
 * ```ts
 * await pipeline(createRedisReadStream(redis, 'logs/2026-11-30.gz', { decompress: true }), parse(), aggregate);
 * ```
 */
export function createRedisReadStream(client: RedisClient, key: string, options?: ReadStreamOptions): RedisReadStream {
  checkClientAndKey(client, key);
  return new RedisReadStream(client, key, resolveReadOptions(options));
}

/**
 * A read stream with options already resolved (and possibly adjusted by the package itself).
 * @internal
 */
export function openRedisReadStream(client: RedisClient, key: string, options: ResolvedReadOptions): RedisReadStream {
  return new RedisReadStream(client, key, options);
}
