/**
 * The read stream: a stored file's chunks, checked in order, out as bytes.
 * @module
 */

import type { Buffer } from 'node:buffer';
import { addAbortSignal, Readable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { RETRY_MAX_MS, RETRY_MIN_MS } from './chunk-window.js';
import { closeConnection, openBlockingConnection, type RedisClient } from './client.js';
import { ConsumedChunks } from './consumed.js';
import { type FileStat, serverMs, toFileStat } from './file-stat.js';
import { aborted, badFormat, corrupt, decodeFailed, isRetryable, notFound, outOfRange, timeout, wrapRedisError } from './errors.js';
import {
  decodeEntry,
  type Entry,
  Event,
  fileKeys,
  type FileKeys,
  Flag,
  isMetaProblem,
  leaseLapsed,
  memoryEventsKey,
  Meta,
  type MetaRecord,
  parseMeta,
  State,
} from './format.js';
import { announceFreed } from './memory-guard.js';
import { checkClientAndKey, type ReadStreamOptions, resolveReadOptions, type ResolvedReadOptions } from './options.js';
import { type Progress, ProgressTicker } from './progress.js';
import { ABANDON, ACK, JOIN, run, TRIM } from './scripts/index.js';
import { EntrySequence, type Step } from './sequence.js';

/**
 * Longest single blocking wait. Between waits the reader checks that the file still exists and
 * that its writer is alive: an expired key or a server restarted without persistence sends no
 * event, so this bounds how late such a loss is noticed.
 */
const LIVENESS_INTERVAL_MS = 1000;

type RawEntry = [Buffer, Buffer[]];

/** The events of a {@link RedisReadStream} beyond those of every Readable. */
export interface RedisReadStream {
  /** The file is open: what {@link stat} would say of it, before the first byte (as GridFS's `file`). */
  on(event: 'file', listener: (file: FileStat) => void): this;
  once(event: 'file', listener: (file: FileStat) => void): this;
  /** How many bytes were delivered, at most once per `progressInterval`, and once at the end. */
  on(event: 'progress', listener: (progress: Progress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'progress', listener: (progress: Progress) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A Readable that yields a stored file's bytes, in order, checking every piece before any of its
 * bytes go out. Create it with {@link createRedisReadStream}; the class is exported for types and
 * `instanceof`.
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
  #opened = false;
  /** The order of the entries, checked as they come. */
  #seq!: EntrySequence;

  #lastEventId = '0-0';
  #lastHeartbeat: number | undefined;
  #lastProgress = 0;
  /** When a gap in the ids was first met (0: none). */
  #gapSince = 0;
  /** The last read reached the stored tail: wait with blocking reads from now on. */
  #atTail = false;
  /** Whether to wait for the writer: only while the file is not complete. */
  #follow = true;
  #pumping = false;
  #wanted = false;
  /** The batch after the one being consumed, already requested, and where it starts. */
  #prefetched: { after: string; entries: Promise<RawEntry[]> } | undefined;
  #done = false;
  /** Since when Redis has been unavailable for a passing reason (0: it is not), and the retry timer. */
  #troubleSince = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryResume: (() => void) | undefined;
  #delivered = 0;
  /** The whole file was read, up to and including its checked end record. */
  #readToEnd = false;
  #gunzip: Gunzip | undefined;
  readonly #progress: ProgressTicker;
  /** A consumer of a file that is trimmed: how far the application has consumed, and reported. */
  #consumed: ConsumedChunks | undefined;
  #reported = 0;
  #reporting: Promise<void> | undefined;
  /** A `resumed` event named the chunk a new writer cut the file back to: read again from there. */
  #rewindTo: number | undefined;

  /** @internal Use {@link createRedisReadStream}. */
  constructor(client: RedisClient, key: string, opts: ResolvedReadOptions) {
    super({ highWaterMark: opts.highWaterMark, ...(opts.encoding ? { encoding: opts.encoding } : {}) });
    this.key = key;
    this.#client = client;
    this.#opts = opts;
    this.#keys = fileKeys(opts.prefix, key);
    this.#progress = new ProgressTicker(opts.progressInterval, (p) => this.emit('progress', p));
    // Attached only now: an already aborted signal destroys the stream at once, and _destroy needs
    // the fields above.
    if (opts.signal) addAbortSignal(opts.signal, this);
  }

  /**
   * The file being read, as {@link stat} describes it, once it is open (before its first byte):
   * size, type, encoding, metadata. Also given by the `file` event.
   */
  file: FileStat | undefined;

  /** Stored bytes delivered so far (before decompression). */
  get deliveredBytes(): number {
    return this.#delivered;
  }

  // The file is opened by the first _read, not in _construct: Node holds back destroy() until
  // _construct has called back, and opening may wait (`waitForCreate`, a Redis that is away), which
  // destroy() and the signal must be able to cut short at any moment.
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
  // Opening

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
      let ttl: number;
      let time: (string | number)[];
      try {
        // Sent together, in this order on one connection: the event position first, then the
        // metadata, so that a file created in between is seen by the second, and one created after
        // it logs an event past the position. One round trip.
        [lastEvent, rawMeta, ttl, time] = await Promise.all([
          this.#client.xrevrange(this.#keys.events, '+', '-', 'COUNT', 1) as Promise<[string, string[]][]>,
          this.#client.hgetall(this.#keys.meta),
          this.#client.ttl(this.#keys.meta),
          this.#client.time() as Promise<(string | number)[]>,
        ]);
      } catch (err) {
        throw wrapRedisError(err, this.key, 'reading the metadata');
      }
      if (this.#done) return;
      this.#lastEventId = lastEvent[0]?.[0] ?? '0-0';
      const meta = parseMeta(rawMeta);
      if (isMetaProblem(meta)) throw meta.problem === 'format' ? badFormat(this.key, meta.detail) : corrupt(this.key, meta.detail);
      if (meta !== undefined) {
        this.#start(meta);
        await this.#join();
        this.#opened = true;
        this.file = toFileStat(this.key, meta, ttl, serverMs(time));
        this.emit('file', this.file);
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
        if (this.#done) return;
        throw wrapRedisError(err, this.key, 'waiting for the file to be created');
      }
      if (this.#done) return;
    }
  }

  #start(meta: MetaRecord): void {
    if (meta.state === State.aborted) throw this.#abortedError(meta.lost);
    const { decompress, start, checksum } = this.#opts;
    if (meta.state === State.complete) this.#checkRange(meta.size);
    this.#meta = meta;
    this.#follow = this.#opts.follow && meta.state === State.writing;
    this.#chunksKey = this.#keys.chunks(meta.gen);
    const firstChunk = Math.floor(start / meta.chunkSize);
    if (meta.trimmed > firstChunk) throw this.#trimmedError(meta.trimmed, firstChunk);
    if (decompress && meta.encoding === 'gzip' && firstChunk > 0) {
      throw notFound(this.key, `it starts at chunk ${firstChunk} (the chunks before it were trimmed once every consumer had passed them), and gzip cannot be decompressed from the middle`);
    }
    this.#seq = new EntrySequence(this.key, meta, { firstChunk, withHeader: firstChunk === 0, start, end: this.#opts.end, checksum });
    this.#lastHeartbeat = meta.heartbeat;
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
      this.#consumed = new ConsumedChunks(meta.chunkSize, start, this.#gunzip !== undefined);
    }
  }

  /**
   * A consumer of a file that is trimmed records where it starts, so that nothing it still needs
   * is trimmed under it (a restarted consumer may have recorded a later position before).
   */
  async #join(): Promise<void> {
    if (!this.#consumed) return;
    const first = this.#seq.chunk;
    let reply: Awaited<ReturnType<typeof JOIN.decode>>;
    try {
      reply = await run(this.#client, JOIN, { meta: this.#keys.meta }, { gen: this.#meta.gen, consumer: this.#opts.consumer!, first, restart: Flag.no });
    } catch (err) {
      throw wrapRedisError(err, this.key, `recording the position of consumer ${JSON.stringify(this.#opts.consumer)}`);
    }
    if (reply.status === 'missing') throw notFound(this.key, 'the file was removed, replaced or expired while being opened');
    if (reply.status === 'gone') throw this.#trimmedError(reply.trimmed, first);
    this.#reported = first;
  }

  #abortedError(lost: boolean): Error {
    return lost
      ? corrupt(this.key, 'Redis lost pieces that it had acknowledged to the writer (a replica without them took over from a failed primary), and the writer aborted')
      : aborted(this.key, 'the writer aborted this file before it was complete');
  }

  #trimmedError(trimmed: number, wanted: number): Error {
    return notFound(this.key, `chunks 0 to ${trimmed - 1} were trimmed once every consumer had read them; this read needs chunk ${wanted}`);
  }

  #blockingConnection(): RedisClient {
    this.#blocking ??= openBlockingConnection(this.#client);
    return this.#blocking;
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      if (!this.#opened) {
        await this.#openRetrying();
        if (this.#done) return;
      }
      while (this.#wanted && !this.#done) {
        let batch: { entries: Entry[]; reachedEnd: boolean };
        try {
          batch = await this.#fetch();
          this.#troubleSince = 0;
        } catch (err) {
          if (await this.#retryLater(err)) continue;
          throw err;
        }
        if (this.#rewound()) continue;
        const { entries } = batch;
        for (let i = 0; i < entries.length && !this.#done; i++) {
          let step: Step;
          try {
            step = this.#seq.accept(entries[i]!);
          } catch (err) {
            // While following, what looks like damage may be a new writer that resumed the file
            // and writes it again from an earlier chunk: its event says so.
            if (!this.#follow || !(await this.#resumedMeanwhile())) throw err;
            break;
          }
          if (step.kind === 'gap') {
            await this.#waitOutGap(step.expected, entries[i]!.id);
            break;
          }
          this.#gapSince = 0;
          await this.#take(step, batch.reachedEnd, entries.length - 1 - i);
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

  /** Go back to where a `resumed` event says the file is written again from. */
  #rewound(): boolean {
    const cut = this.#rewindTo;
    if (cut === undefined) return false;
    this.#rewindTo = undefined;
    if (!this.#seq.rewind(cut)) return false;
    this.#prefetched = undefined;
    this.#atTail = false;
    this.#gapSince = 0;
    return true;
  }

  /** Read the events since the last one seen; true when a new writer resumed the file and this reader must go back. */
  async #resumedMeanwhile(): Promise<boolean> {
    let items: RawEntry[];
    try {
      items = (await this.#client.xrangeBuffer(this.#keys.events, `(${this.#lastEventId}`, '+')) as RawEntry[];
    } catch (err) {
      throw wrapRedisError(err, this.key, 'reading the events of the file');
    }
    this.#onEvents(items);
    return this.#rewindTo !== undefined && this.#rewound();
  }

  /**
   * Act on a checked entry. `more`: entries after it in the same batch; `reachedEnd`: the batch is
   * known to end where the stream ended when it was read.
   */
  async #take(step: Step, reachedEnd: boolean, more: number): Promise<void> {
    switch (step.kind) {
      case 'header':
        return;
      case 'bytes':
        if (step.bytes.length > 0) this.#deliver(step.bytes);
        if (step.pastEnd) this.#finish();
        return;
      case 'end': {
        // Nothing may follow the end record: in this batch, or in the stream, unless the batch is
        // known to reach the stream's end (an XRANGE that returned fewer entries than it asked for).
        if (more > 0 || (!reachedEnd && (await this.#rangeAfter(this.#seq.lastId, 1)).length > 0)) {
          throw corrupt(this.key, `entries follow the end record ${this.#seq.lastId}`);
        }
        await this.#checkEndAgainstMeta(step);
        this.#checkRange(step.size);
        this.#readToEnd = this.#opts.start === 0;
        this.#finish();
        return;
      }
      case 'abort': {
        // The abort record and the hash's state are written in one step: they must agree.
        let gen: string | null, state: string | null, lost: string | null;
        try {
          [gen, state, lost] = await this.#client.hmget(this.#keys.meta, Meta.gen, Meta.state, Meta.lost);
        } catch (err) {
          throw wrapRedisError(err, this.key, 'checking the file');
        }
        if (gen !== this.#meta.gen) throw notFound(this.key, 'the file was removed, replaced or expired while being read');
        if (lost === Flag.yes) throw this.#abortedError(true);
        if (state !== State.aborted) throw corrupt(this.key, `the stream holds an abort record but the metadata hash says ${state}`);
        throw aborted(this.key, `the writer aborted this file before it was complete (${step.reason})`);
      }
    }
  }

  /** The end record is the authority on the sizes and the CRC: the hash must say the same. */
  async #checkEndAgainstMeta(end: Extract<Step, { kind: 'end' }>): Promise<void> {
    let state: string | null = this.#meta.state;
    let size: string | null = String(this.#meta.size);
    let chunks: string | null = String(this.#meta.chunks);
    let crc: string | null = this.#meta.crc32;
    let gen: string | null = this.#meta.gen;
    if (this.#meta.state !== State.complete) {
      try {
        [gen, state, size, chunks, crc] = await this.#client.hmget(this.#keys.meta, Meta.gen, Meta.state, Meta.size, Meta.chunks, Meta.crc32);
      } catch (err) {
        throw wrapRedisError(err, this.key, 'checking the file');
      }
      // Consumers that all acknowledged it deleted it right after its end record was read: every
      // piece was checked already, and there is nothing left to compare with.
      if (gen === null) return;
    }
    if (gen !== this.#meta.gen) throw notFound(this.key, 'the file was replaced while being read');
    if (state !== State.complete) throw corrupt(this.key, `the stream holds an end record but the metadata hash says ${state}`);
    if (size !== String(end.size) || chunks !== String(end.chunks) || crc !== end.crc32) {
      throw corrupt(
        this.key,
        `the metadata hash says ${size} bytes in ${chunks} chunks, crc32 ${crc}; the end record says ${end.size} bytes in ${end.chunks} chunks, crc32 ${end.crc32}`,
      );
    }
  }

  /**
   * Redis refused a read for a passing reason: a cluster failing over (its node for this file is
   * gone and no replica has taken over yet), loading, busy. Wait and let the caller read again from
   * the same entry, for at most `idleTimeout` in all. Resolves to false when the error is final.
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

  /** The next entries, waiting for the writer when following. An empty batch means "look again". */
  async #fetch(): Promise<{ entries: Entry[]; reachedEnd: boolean }> {
    const { readAhead } = this.#opts;
    const follow = this.#follow;
    if (!(follow && this.#atTail)) {
      const after = this.#seq.lastId;
      const prefetched = this.#prefetched?.after === after ? this.#prefetched.entries : undefined;
      this.#prefetched = undefined;
      const raw = await (prefetched ?? this.#rangeAfter(after, readAhead));
      if (raw.length === readAhead) {
        // Ask for the next batch now, so that Redis works while this one is consumed. One batch
        // ahead at most: the read-ahead stays bounded.
        const next = raw[raw.length - 1]![0].toString('latin1');
        if (this.#seq.position <= this.#opts.end) {
          const entries = this.#rangeAfter(next, readAhead);
          entries.catch(() => {});
          this.#prefetched = { after: next, entries };
        }
        return { entries: raw.map(([id, fields]) => decodeEntry(id, fields)), reachedEnd: false };
      }
      this.#atTail = true;
      if (raw.length > 0) return { entries: raw.map(([id, fields]) => decodeEntry(id, fields)), reachedEnd: true };
      if (!follow) {
        if (!(await this.#checkFile(false)) && !this.#done) this.#finish();
        return { entries: [], reachedEnd: true };
      }
    }
    // A blocking read returns what arrived, not the stream's end.
    return { entries: await this.#waitForEntries(), reachedEnd: false };
  }

  /** Up to `count` entries after the id `after` (exclusive; `0-0` takes the header too). */
  async #rangeAfter(after: string, count: number): Promise<RawEntry[]> {
    try {
      return await this.#client.xrangeBuffer(this.#chunksKey, after === '0-0' ? '-' : `(${after}`, '+', 'COUNT', count);
    } catch (err) {
      throw wrapRedisError(err, this.key, `reading after entry ${after}`);
    }
  }

  async #waitForEntries(): Promise<Entry[]> {
    // A consumer at the tail may have consumed more since it last reported: a writer held back by
    // a memory limit may be waiting for exactly that.
    await this.#reportPosition();
    const { readAhead, idleTimeout } = this.#opts;
    const idleLeft = idleTimeout - (Date.now() - this.#lastProgress);
    const block = Math.max(1, Math.min(LIVENESS_INTERVAL_MS, idleLeft));
    const after = this.#seq.lastId === '0-0' ? '0-0' : this.#seq.lastId;
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
      throw wrapRedisError(err, this.key, `waiting for entry ${this.#seq.expected}`);
    }
    if (this.#done) return [];
    let entries: Entry[] = [];
    for (const [streamKey, items] of streamsOf(reply)) {
      if (streamKey.toString() === this.#keys.events) this.#onEvents(items);
      else entries = items.map(([id, fields]) => decodeEntry(id, fields));
    }
    if (entries.length > 0) {
      this.#lastProgress = Date.now();
      // Whatever follows these may already be stored: read on without blocking.
      if (entries.length === readAhead) this.#atTail = false;
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
      if (name === Event.resumed && gen === this.#meta.gen) {
        const cut = Number(fields[3]?.toString());
        if (Number.isSafeInteger(cut)) this.#rewindTo = Math.min(cut, this.#rewindTo ?? cut);
      }
    }
  }

  /**
   * A consumer of a file whose writer keeps Redis under a memory limit reports how far the
   * application has consumed (not what was fetched and is still buffered), so that chunks that
   * every consumer has passed can be trimmed; freed memory wakes held-back writers. One report at a time.
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
      let trimmed: number;
      try {
        ({ trimmed } = await run(this.#client, TRIM, { meta: this.#keys.meta, chunks: this.#chunksKey }, { gen: this.#meta.gen, consumer, position: at }));
      } catch (err) {
        throw wrapRedisError(err, this.key, `reporting the position of consumer ${JSON.stringify(consumer)}`);
      }
      this.#reported = at;
      if (trimmed > 0) await announceFreed(this.#client, memoryEventsKey(this.#opts.prefix), this.key);
      at = consumed.chunks(this.readableLength, this.readableEncoding);
    }
  }

  /**
   * Entry `found` came where `expected` should have. A reader that does not follow, a file no longer
   * being written, a writer whose lease has lapsed, or one that lost acknowledged pieces: the gap is
   * damage at once. While a live writer holds the file it can be passing: after Redis refused a
   * piece (out of memory), later pieces may be stored before the writer deletes them and writes
   * again from the refused one, announcing it with a `repaired` event. So wait for an event (or the
   * liveness interval) and read again, for at most `idleTimeout`.
   */
  async #waitOutGap(expected: string, found: string): Promise<void> {
    const gap = corrupt(this.key, `expected entry ${expected}, found ${found}: entries are missing`);
    if (!this.#follow) throw gap;
    this.#gapSince ||= Date.now();
    const waited = Date.now() - this.#gapSince;
    let fields: (string | null)[];
    let time: (string | number)[];
    try {
      [fields, time] = await Promise.all([
        this.#client.hmget(this.#keys.meta, Meta.state, Meta.trimmed, Meta.lost, Meta.heartbeat, Meta.heartbeatInterval),
        this.#client.time() as Promise<(string | number)[]>,
      ]);
    } catch (err) {
      throw wrapRedisError(err, this.key, 'checking the file');
    }
    const [state, trimmed, lost, heartbeat, interval] = fields;
    if (Number(trimmed ?? 0) > this.#seq.chunk) throw this.#trimmedError(Number(trimmed), this.#seq.chunk);
    if (lost === Flag.yes) throw this.#abortedError(true);
    if (state === State.aborted) throw aborted(this.key, 'the writer aborted this file before it was complete');
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    if (state !== State.writing || leaseLapsed(Number(heartbeat), Number(interval), now) || waited >= this.#opts.idleTimeout) throw gap;
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
      throw wrapRedisError(err, this.key, `waiting for entry ${expected}`);
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
    if (state === State.aborted) {
      // The abort record comes after what is stored: read on to it (or to the gap before it).
      if ((await this.#rangeAfter(this.#seq.lastId, 1)).length > 0) {
        this.#atTail = false;
        return true;
      }
      throw this.#abortedError(lost === Flag.yes);
    }
    if (state === State.complete) {
      // The end record is stored in the same step as the state: it must be readable now.
      if ((await this.#rangeAfter(this.#seq.lastId, 1)).length === 0) {
        throw corrupt(this.key, `the file is complete but nothing is stored after entry ${this.#seq.lastId}`);
      }
      this.#atTail = false;
      return true;
    }
    if (!following) return false;
    if (Number(heartbeat) !== this.#lastHeartbeat) {
      this.#lastHeartbeat = Number(heartbeat);
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
    let reply: Awaited<ReturnType<typeof ABANDON.decode>>;
    try {
      reply = await run(this.#client, ABANDON, { meta: this.#keys.meta, chunks: this.#chunksKey }, { gen: this.#meta.gen, reason });
    } catch (err) {
      throw wrapRedisError(err, this.key, 'marking the file of a dead writer aborted');
    }
    if (reply.status === 'marked') throw aborted(this.key, `the file was marked aborted: ${reason}`);
    if (reply.status === 'missing') throw notFound(this.key, 'the file was removed, replaced or expired while being read');
    // 'alive': a heartbeat came just now, which the next check sees; 'settled': the file was
    // completed or aborted meanwhile, which the next read shows.
  }

  /** A read that starts past the end of the file is an error; one that ends past it reads to the end, as fs does. */
  #checkRange(size: number): void {
    const { start } = this.#opts;
    if (start > size) throw outOfRange(this.key, `\`start\` is ${start} but the file holds ${size} bytes`);
  }

  #deliver(bytes: Buffer): void {
    this.#delivered += bytes.length;
    this.#progress.tick(this.#delivered, this.#total());
    if (this.#gunzip) {
      const gunzip = this.#gunzip;
      const through = this.#seq.chunk;
      const consumed = this.#consumed;
      gunzip.write(bytes, consumed && (() => consumed.decoded(through, gunzip.readableLength)));
    } else {
      this.#consumed?.pushed(bytes.length);
      if (!this.push(bytes)) this.#wanted = false;
    }
  }

  /** The size of the file, once known: what a full read will deliver. */
  #total(): number | undefined {
    return this.#meta.state === State.complete ? this.#meta.size : undefined;
  }

  #finish(): void {
    this.#done = true;
    this.#progress.tick(this.#delivered, this.#total() ?? this.#seq.position, true);
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
    run(this.#client, ACK, { meta: this.#keys.meta, chunks: this.#chunksKey, events: this.#keys.events }, { gen: this.#meta.gen, consumer, any: Flag.no })
      .then(
        async (reply) => {
          if (reply.status === 'missing') throw notFound(this.key, 'the file was removed before this consumer acknowledged it');
          if (reply.status === 'unfinished') throw aborted(this.key, `cannot acknowledge a file in state ${reply.state}`);
          if (reply.status === 'deleted' && this.#meta.trim) await announceFreed(this.#client, memoryEventsKey(this.#opts.prefix), this.key);
          this.push(null);
        },
        (err: unknown) => {
          throw wrapRedisError(err, this.key, `acknowledging as consumer ${JSON.stringify(consumer)}`);
        },
      )
      .catch((err: unknown) => this.destroy(err as Error));
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
 * own (set `follow: false` to stop at what is stored now). Every piece is checked before any of its
 * bytes go out: its place in the file, its size and its CRC-32; a full read also checks the end
 * record's CRC-32 of the whole file.
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
