/**
 * The read stream: a stored file's pieces, each checked before its bytes go out, in order; it
 * follows a file still being written, with the file's watch (file-watch.ts) for liveness and gaps.
 * @module
 */

import type { Buffer } from 'node:buffer';
import { finished, Readable } from 'node:stream';
import { createGunzip, type Gunzip, constants as zlibConstants } from 'node:zlib';
import { ConsumerBook } from './consumer.js';
import {
  aborted,
  corrupt,
  decodeFailed,
  isRetryable,
  notFound,
  outOfRange,
  signalAbortError,
  wrapRedisError,
} from './errors.js';
import { type FileStat, toFileStat } from './file-stat.js';
import { abortedError, FileWatch, type Found, type RawEntry, trimmedError } from './file-watch.js';
import {
  decodeEntry,
  type Entry,
  FIRST_PIECE,
  type FileKeys,
  Flag,
  fileKeys,
  HEADER_ID,
  idBefore,
  type MetaRecord,
  State,
} from './format.js';
import { GUARDED_READ_BYTES, guardedBatch } from './memory-guard.js';
import { checkClientAndKey, type ReadStreamOptions, type ResolvedReadOptions, resolveReadOptions } from './options.js';
import { type Progress, ProgressTicker } from './progress.js';
import { portOf, type RedisClient, type RedisPort } from './redis/port.js';
import { Pauses, RETRY_MAX_MS, RETRY_MIN_MS } from './retry.js';
import { EntrySequence, type Step } from './sequence.js';
import { onceAborted } from './shared-listener.js';
import { LinkEstimate, linkMemory, probeLink, timeAsProbe } from './window-size.js';

/**
 * Bytes read ahead beyond one batch, as a multiple of what the link holds in a round trip, in
 * whole batches rounded down: on loopback and at a round trip of about a millisecond the floor
 * ({@link MIN_DEPTH}) stays.
 */
const READ_AHEAD_GAIN = 4;

/**
 * Batches asked for ahead of the one being consumed, at least (when `maxReadAheadBytes` holds
 * them): with two, Redis has the next request at hand when it is done with a reply, where with one
 * it waits for the client to take that reply and ask again. On loopback a read runs faster with
 * two than with one, and slower again with three (Redis holds replies it cannot send yet):
 * docs/benchmarks.md has the figures.
 */
const MIN_DEPTH = 2;

/**
 * The events of a {@link RedisReadStream} beyond those of every Readable: `file` (the file is open:
 * what {@link stat} would say of it, before the first byte, as GridFS's `file`) and `progress` (how
 * many bytes were delivered, at most once per `progressInterval`, and once at the end).
 */
export interface RedisReadStream {
  on(event: 'file', listener: (file: FileStat) => void): this;
  on(event: 'progress', listener: (progress: Progress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'file', listener: (file: FileStat) => void): this;
  once(event: 'progress', listener: (progress: Progress) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A Readable that yields a stored file's bytes, in order, checking every piece before any of its
 * bytes go out. Create it with {@link createRedisReadStream}; the class is exported for types and
 * `instanceof`.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: typed events, declared as Node's own streams declare theirs
export class RedisReadStream extends Readable {
  /** The file's key. */
  readonly key: string;
  /**
   * The file being read, as {@link stat} describes it, once it is open (before its first byte):
   * size, type, encoding, metadata. Also given by the `file` event.
   */
  file: FileStat | undefined;
  readonly #client: RedisPort;
  readonly #opts: ResolvedReadOptions;
  readonly #keys: FileKeys;
  readonly #watch: FileWatch;
  #meta!: MetaRecord;
  #chunksKey = '';
  /** The order of the entries, checked as they come. */
  #seq!: EntrySequence;
  #consumer: ConsumerBook | undefined;
  #opened = false;
  /** The last read reached the stored tail: wait with blocking reads from now on. */
  #atTail = false;
  /** Whether to wait for the writer: only while the file is not complete. */
  #follow = true;
  #pumping = false;
  #wanted = false;
  /** A report of the consumer's position is queued (see {@link RedisReadStream.read}). */
  #reportQueued = false;
  /**
   * Every byte is pushed and the consumer acknowledges the file once the application has taken
   * them all out of the stream's buffer (see {@link RedisReadStream.read}): bytes fetched and not
   * taken are not consumed.
   */
  #ackWhenTaken = false;
  /** Once {@link RedisReadStream.#ackWhenTaken}: a `read(size)` asked for more than was left. */
  #restAsked = false;
  /** Entries per read request: `readAhead`, fewer for large chunks (`readAheadBytes`). */
  #batch = 1;
  /** The batch after the one being consumed, already requested: where it starts, and its COUNT. */
  #prefetched: Request | undefined;
  /**
   * Batches requested beyond `#prefetched`, in order, on a link whose round trip calls for more
   * read-ahead: each starts where the one before it ends if every entry is a whole chunk (the
   * usual file, written a chunk at a time), and is used only when it does.
   */
  #further: Request[] = [];
  /** After a bounded request that found nothing: the next one reads on to the stream's end. */
  #unbounded = false;
  /** The link's round trip and throughput, which size the read-ahead; and whether it was probed. */
  #link: LinkEstimate | undefined;
  #probed = false;
  #done = false;
  /** Since when Redis has been unavailable for a passing reason (0: it is not), and the pause. */
  #troubleSince = 0;
  readonly #pauses = new Pauses();
  #delivered = 0;
  /** The whole file was read, up to and including its checked end record. */
  #readToEnd = false;
  #gunzip: Gunzip | undefined;
  /** A `follow: false` read stopped inside the gzip data: the gunzip is flushed, not ended. */
  #stoppedInside = false;
  #endedInside = false;
  readonly #progress: ProgressTicker;
  /** An open started before the first read (see {@link RedisReadStream.openEarly}), for #open to take. */
  #early: Promise<Found | undefined> | undefined;

  /** @internal Use {@link createRedisReadStream}. */
  constructor(client: RedisPort, key: string, opts: ResolvedReadOptions) {
    super({ highWaterMark: opts.highWaterMark, ...(opts.encoding ? { encoding: opts.encoding } : {}) });
    this.key = key;
    this.#client = client;
    this.#opts = opts;
    this.#keys = fileKeys(opts.prefix, key);
    this.#watch = new FileWatch(client, key, this.#keys, opts);
    this.#progress = new ProgressTicker(opts.progressInterval, (p) => this.emit('progress', p));
    // Attached only now: an already aborted signal destroys the stream at once, and _destroy needs
    // the fields above. As stream.addAbortSignal does, but with one listener on a signal that many
    // streams share (see onceAborted); `finished` removes it once the stream is done, and its
    // 'error' listener keeps an abort from being an uncaught error, as with Node's own streams.
    const { signal } = opts;
    if (signal)
      finished(
        this,
        onceAborted(signal, () => this.destroy(signalAbortError(signal))),
      );
  }

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
    if (this.#stoppedInside) this.#endInside();
    if (!this.#pumping && !this.#done) void this.#pump();
  }

  /**
   * A consumer's position is reported from here, and its acknowledgement sent once every byte is
   * pushed and taken: every way of taking bytes out calls `read()`
   * (flowing mode, pipes and async iteration too; a chunk handed straight to a `'data'` listener
   * is followed by a `read(0)`). Node calls `_read` only while the buffer is below
   * `highWaterMark`: a consumer that took part of a full buffer and stopped would keep its old
   * position, and the chunks it passed untrimmed, until it read on.
   */
  override read(size?: number): ReturnType<Readable['read']> {
    const taken = super.read(size);
    // Every byte pushed, and a read of more than what is left: Node hands the rest over only at the
    // end, so the application has taken all it can before it.
    if (this.#ackWhenTaken && taken === null && size !== undefined && size > this.readableLength)
      this.#restAsked = true;
    if ((this.#consumer?.tracking || this.#ackWhenTaken) && !this.#reportQueued) {
      // After the caller's synchronous work (an `unshift` of what it did not want) is done; one
      // report for any number of reads meanwhile.
      this.#reportQueued = true;
      queueMicrotask(() => {
        this.#reportQueued = false;
        if (this.#ackWhenTaken && (this.readableLength === 0 || this.#restAsked) && !this.destroyed) this.#ackThenEnd();
        else this.#reportPosition().catch((err: unknown) => this.destroy(err as Error));
      });
    }
    return taken;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#done = true;
    this.#pauses.cancel();
    this.#gunzip?.destroy();
    // Leaves the shared blocking reads at once (the last follower of a connection closes it).
    this.#watch.close();
    callback(error);
  }

  // ---------------------------------------------------------------------------------------------
  // Opening

  /**
   * @internal Start opening the file now, before anything reads it, without waiting for it to be
   * created (a channel receiver opens its next file while the application processes the current
   * one). Resolves to the file's hash (undefined when the stream was destroyed meanwhile), or
   * rejects as opening would (`ERR_REDIS_FILE_NOT_FOUND` when there is no file). The stream itself
   * says nothing until it is read: then it takes what was found, or the failure, and goes on as
   * usual. Called once, before the first read.
   */
  openEarly(): Promise<MetaRecord | undefined> {
    if (this.#early === undefined && !this.#opened && !this.#pumping && !this.destroyed) {
      this.#early = this.#find(0);
      this.#early.catch(() => {});
    }
    return (this.#early ?? Promise.resolve(undefined)).then((found) => found?.meta);
  }

  #find(waitForCreate: number): Promise<Found | undefined> {
    const { start, end, readAhead, readAheadBytes } = this.#opts;
    // Of a file written under a memory limit, the batch its writer's guard counts on.
    const guardedBytes = GUARDED_READ_BYTES;
    // The open of a large complete file carries no entries (see the open script): a request of a
    // few hundred bytes with nothing else in flight, timed as the link's probe. A probe sent with
    // the first batch instead would wait for Redis to build that batch's reply too.
    const timed = waitForCreate === 0 && !this.#probed ? timeAsProbe(this.#client, 'read') : undefined;
    const found = this.#watch.find(waitForCreate, { start, end, readAhead, readAheadBytes, guardedBytes });
    if (timed) {
      found.then(
        (f) => {
          if (f?.first !== undefined || f?.meta.state !== State.complete) return timed(false);
          this.#probed = true;
          timed(true);
        },
        () => timed(false),
      );
    }
    return found;
  }

  async #open(): Promise<void> {
    const early = this.#early;
    this.#early = undefined;
    const found = await (early ?? this.#find(this.#opts.waitForCreate));
    if (found === undefined || this.#done) return;
    this.#start(found.meta);
    // The first batch came with the hash: the first fetch takes it instead of asking for it (a
    // small file is then read in one round trip). Its COUNT comes with it, so that whether it
    // reached the stream's end is told as for any other batch.
    if (found.first !== undefined) {
      const { count, entries } = found.first;
      this.#prefetched = { after: this.#seq.lastId, count, upTo: undefined, entries: Promise.resolve(entries) };
    } else if (found.meta.state === State.complete && this.#seq.position <= this.#opts.end) {
      // A larger file: its first batches are asked for now, as deep as the link calls for.
      this.#prefetched = this.#ask(this.#seq.lastId);
      this.#askFurther();
    }
    await this.#consumer?.join(this.#seq.chunk);
    this.#opened = true;
    this.file = toFileStat(this.key, found.meta, found.ttl, found.now);
    this.emit('file', this.file);
  }

  #start(meta: MetaRecord): void {
    // The hash is the authority on the state: an aborted file is not read.
    if (meta.state === State.aborted) throw abortedError(this.key, meta.lost);
    const { decompress, start, checksum, consumer } = this.#opts;
    if (meta.state === State.complete) this.#checkRange(meta.size);
    this.#meta = meta;
    this.#follow = this.#opts.follow && meta.state === State.writing;
    this.#chunksKey = this.#keys.chunks(meta.gen);
    this.#watch.watch(meta);
    const firstChunk = Math.floor(start / meta.chunkSize);
    if (meta.trimmed > firstChunk) throw trimmedError(this.key, meta.trimmed, firstChunk);
    const gzip = decompress && meta.encoding === 'gzip';
    if (gzip && firstChunk > 0) {
      throw notFound(
        this.key,
        `it starts at chunk ${firstChunk} (the chunks before it were trimmed once every consumer had passed them), and gzip cannot be decompressed from the middle`,
      );
    }
    this.#batch = Math.max(1, Math.min(this.#opts.readAhead, Math.floor(this.#opts.readAheadBytes / meta.chunkSize)));
    // Redis holds a reply until the reader takes it: under the writer's memory limit, small ones.
    if (meta.trim) this.#batch = Math.min(this.#batch, guardedBatch(meta.chunkSize));
    this.#seq = new EntrySequence(this.key, meta, {
      firstChunk,
      withHeader: firstChunk === 0,
      start,
      end: this.#opts.end,
      checksum,
    });
    if (consumer !== undefined) {
      this.#consumer = new ConsumerBook(this.#client, this.key, this.#keys, {
        prefix: this.#opts.prefix,
        consumer,
        meta,
        start,
        decoding: gzip,
      });
    }
    if (gzip) {
      // The gzip data of a file that reaches its end record must be whole: zlib fails a truncated
      // member at the end of its input. A reader that stops at the pieces stored now (not
      // following a file still being written) flushes instead (#stopInside).
      const gunzip = createGunzip();
      gunzip.on('data', (data: Buffer) => {
        this.#consumer?.pushed(data.length);
        if (!this.push(data)) gunzip.pause();
        else if (this.#stoppedInside) this.#endInside();
      });
      // The gzip data must reach the file's last byte. zlib ends quietly at a member followed by a
      // zero byte (padding to it), leaving the rest of its input unread: that is not the file's end.
      gunzip.on('end', () => {
        if (this.#endedInside) return;
        if (this.#done && gunzip.bytesWritten === this.#delivered) this.#end();
        else this.destroy(decodeFailed(this.key, trailingData(gunzip.bytesWritten)));
      });
      gunzip.on('error', (err: Error & { code?: string }) =>
        this.destroy(
          decodeFailed(this.key, err.code === 'ERR_STREAM_PUSH_AFTER_EOF' ? trailingData(gunzip.bytesWritten) : err),
        ),
      );
      this.#gunzip = gunzip;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#opened && !this.#done) await this.#retrying(() => this.#open());
      while (this.#wanted && !this.#done) {
        const batch = await this.#retrying(() => this.#fetch());
        if (batch === undefined || this.#rewound()) continue;
        const { entries } = batch;
        for (let i = 0; i < entries.length && !this.#done; i++) {
          let step: Step;
          try {
            step = this.#seq.accept(entries[i]!);
          } catch (err) {
            // While following, what looks like damage may be a new writer that resumed the file
            // and writes it again from an earlier chunk: its event says so.
            if (!this.#follow || !(await this.#watch.resumedMeanwhile())) throw err;
            this.#rewound();
            break;
          }
          if (step.kind === 'gap') {
            this.#atTail = false;
            this.#prefetched = undefined;
            await this.#watch.waitOutGap(step.expected, entries[i]!.id, this.#seq.chunk, this.#follow);
            break;
          }
          this.#watch.progressed();
          // Bytes are handed on at once (no promise per piece); only a record waits for Redis.
          if (step.kind === 'bytes') this.#takeBytes(step);
          else await this.#take(step, batch.reachedEnd, entries.length - 1 - i);
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

  /**
   * Run `step`; when Redis refused it for a passing reason (a cluster failing over, loading, busy),
   * wait and resolve to undefined so that the caller runs it again, for at most `idleTimeout` in
   * all. A final error is thrown.
   */
  async #retrying<T>(step: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await step();
      this.#troubleSince = 0;
      return result;
    } catch (err) {
      if (this.#done || !isRetryable((err as { cause?: unknown }).cause ?? err, this.#client)) throw err;
      this.#troubleSince ||= Date.now();
      const waited = Date.now() - this.#troubleSince;
      if (waited >= this.#opts.idleTimeout) throw err;
      this.#prefetched = undefined;
      await this.#pauses.wait(
        Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, waited / 2), this.#opts.idleTimeout - waited),
      );
      return undefined;
    }
  }

  /** Go back to where a `resumed` event says the file is written again from. */
  #rewound(): boolean {
    const cut = this.#watch.takeRewind();
    if (cut === undefined || !this.#seq.rewind(cut)) return false;
    this.#prefetched = undefined;
    this.#atTail = false;
    return true;
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
        return this.#takeBytes(step);
      case 'end': {
        // Nothing may follow the end record: in this batch, or in the stream, unless the batch is
        // known to reach the stream's end (an XRANGE that returned fewer entries than it asked for).
        if (more > 0 || (!reachedEnd && (await this.#rangeAfter(this.#seq.lastId, 1)).length > 0)) {
          throw corrupt(this.key, `entries follow the end record ${this.#seq.lastId}`);
        }
        await this.#watch.checkAgainstMeta(step);
        this.#checkRange(step.size);
        this.#readToEnd = this.#opts.start === 0;
        this.#finish();
        return;
      }
      case 'abort': {
        const { state, lost } = await this.#watch.checkAgainstMeta(step);
        if (lost === Flag.yes) throw abortedError(this.key, true);
        if (state !== State.aborted)
          throw corrupt(this.key, `the stream holds an abort record but the metadata hash says ${state}`);
        throw aborted(this.key, `the writer aborted this file before it was complete (${step.reason})`);
      }
    }
  }

  /** Hand on a checked piece's bytes (those within the range); the read ends once they pass `end`. */
  #takeBytes(step: Extract<Step, { kind: 'bytes' }>): void {
    if (step.bytes.length > 0) this.#deliver(step.bytes);
    if (step.pastEnd) this.#finish();
  }

  /** The next entries, waiting for the writer when following. An empty batch means "look again". */
  async #fetch(): Promise<{ entries: Entry[]; reachedEnd: boolean }> {
    const readAhead = this.#batch;
    const decode = (raw: RawEntry[]): Entry[] => raw.map(([id, fields]) => decodeEntry(id, fields));
    if (!(this.#follow && this.#atTail)) {
      const after = this.#seq.lastId;
      let request = this.#prefetched?.after === after ? this.#prefetched : undefined;
      this.#prefetched = undefined;
      // A gap, a rewind or a retry: whatever was asked for further ahead starts elsewhere.
      if (request === undefined) {
        this.#further = [];
        request = this.#ask(after);
      }
      const raw = await request.entries;
      const next = raw.length > 0 ? raw[raw.length - 1]![0].toString('latin1') : undefined;
      if (request.upTo !== undefined && raw.length < request.count) {
        const last = next === undefined ? -Infinity : chunkOf(next);
        if (last < request.upTo && (raw.length === 0 || this.#meta.state !== State.complete)) {
          // Everything stored up to the bound came, and stops short of it: of a file being
          // written, the stream may end here; of a complete file (nothing came), chunks are
          // missing. The next request reads on to the stream's end, which tells.
          this.#further = [];
          this.#unbounded = true;
          return { entries: decode(raw), reachedEnd: false };
        }
      }
      if (raw.length === request.count || request.upTo !== undefined) {
        // Ask for the next batches now, so that Redis works while this one is consumed. As many
        // as the link calls for, within `maxReadAheadBytes`: the read-ahead stays bounded.
        if (this.#seq.position <= this.#opts.end) this.#readAhead(next!, request, raw.length);
        else this.#further = [];
        return { entries: decode(raw), reachedEnd: false };
      }
      // The stream ends here: nothing lies further.
      this.#further = [];
      this.#atTail = true;
      if (raw.length > 0) return { entries: decode(raw), reachedEnd: true };
      if (!this.#follow) {
        if (!(await this.#watch.checkFile(false, after)) && !this.#done) this.#finish(true);
        else this.#atTail = false;
        return { entries: [], reachedEnd: true };
      }
    }
    // A consumer at the tail may have consumed more since it last reported: a writer held back by
    // a memory limit may be waiting for exactly that.
    await this.#reportPosition();
    const raw = await this.#watch.waitForEntries(this.#seq.lastId, readAhead);
    // Whatever follows a full batch may already be stored: read on without blocking.
    if (raw.length === readAhead) this.#atTail = false;
    // A blocking read returns what arrived, not the stream's end.
    return { entries: decode(raw), reachedEnd: false };
  }

  /**
   * Have the batch after `next` requested, `previous` having brought `got` entries ending there,
   * and as many after it as the link calls for. The batches of a complete file are bounded by chunk
   * (see {@link #ask}): the one after a batch that brought every entry up to its bound starts at
   * that bound, known before the batch arrives, so that several can be asked for at once; entries
   * are consumed in order, each batch only where the one before it ended.
   */
  #readAhead(next: string, previous: Request, got: number): void {
    const whole = previous.upTo !== undefined && got < previous.count;
    const known = whole && this.#further[0]?.after === boundId(previous.upTo!) ? this.#further.shift() : undefined;
    if (known !== undefined) {
      // It starts at the bound, where everything up to `next` ends: the same place.
      this.#prefetched = { ...known, after: next };
    } else {
      this.#further = [];
      // A read whose last chunk is in the batch just read asks for nothing more now (should that
      // chunk have pieces still to come, the next fetch asks for them).
      if (chunkOf(next) >= this.#lastChunkWanted()) return;
      this.#prefetched = this.#ask(next);
    }
    this.#askFurther();
  }

  /**
   * Ask for the batches after `#prefetched` that the link calls for: only of a stored file (a
   * follower near the writer would ask for nothing), nor of one written under a memory limit
   * (Redis holds every reply not yet taken, and the writer's memory guard counts on one batch per
   * reader). Each starts at the bound of the one before it.
   */
  #askFurther(): void {
    if (this.#meta.state !== State.complete || this.#meta.trim || this.#prefetched === undefined) return;
    const depth = this.#depth(this.#batch);
    let last = this.#further.at(-1) ?? this.#prefetched;
    while (this.#further.length + 1 < depth && last.upTo !== undefined && last.upTo < this.#lastChunkWanted()) {
      last = this.#ask(boundId(last.upTo), last.upTo);
      this.#further.push(last);
    }
  }

  /**
   * The request for the entries after the id `after`: every entry up to a chunk, `readAhead`
   * chunks on from the chunk `after` is in (`from` when known), no further than the range wants,
   * whatever number of pieces they were stored in (a slowly written log holds many small ones),
   * at most `ENTRY_CAP` entries; of a complete file, up to the stream's end once the bound reaches
   * its last chunk. A batch of `readAhead` entries up to the stream's end instead for a file
   * written under a memory limit, and after a bounded request that stopped short.
   */
  #ask(after: string, from?: number): Request {
    // Under a memory limit the writer's guard counts on replies of a batch of entries; and after
    // a bounded request that stopped short, only a request to the stream's end tells where it ends.
    if (this.#meta.trim || this.#unbounded) {
      this.#unbounded = false;
      return { after, count: this.#batch, upTo: undefined, entries: this.#request(after, this.#batch, undefined) };
    }
    const bound = Math.min((from ?? chunkOf(after)) + this.#batch, this.#lastChunkWanted());
    // A bound at the last chunk reads on to the stream's end: the end record (record `chunks`)
    // comes with the last chunks rather than in a round trip of its own.
    const upTo = this.#meta.state === State.complete && bound >= this.#meta.chunks - 1 ? undefined : bound;
    const count = Math.max(this.#batch + 2, ENTRY_CAP);
    return { after, count, upTo, entries: this.#request(after, count, upTo) };
  }

  /**
   * The last chunk the read needs: the one holding `end`; of a complete file read to its end, the
   * end record's; of a file being written, none yet known.
   */
  #lastChunkWanted(): number {
    const { end } = this.#opts;
    const { size, chunks, chunkSize, state } = this.#meta;
    if (state !== State.complete) return end === Infinity ? Infinity : Math.floor(end / chunkSize);
    return end < size - 1 ? Math.floor(end / chunkSize) : chunks;
  }

  /**
   * Batches to have requested ahead of the one consumed: {@link MIN_DEPTH}, more as the link calls
   * for, within the budget (at least 1).
   */
  #depth(count: number): number {
    const bytes = count * this.#meta.chunkSize;
    const most = Math.max(1, Math.floor(this.#opts.maxReadAheadBytes / bytes));
    const link = this.#link?.product(READ_AHEAD_GAIN) ?? 0;
    return Math.min(most, Math.max(MIN_DEPTH, 1 + Math.floor(link / bytes)));
  }

  /** `#rangeAfter` for a batch: timed, for the estimate of the link. */
  #request(after: string, count: number, upTo: number | undefined): Promise<RawEntry[]> {
    this.#link ??= new LinkEstimate(linkMemory(this.#client, 'read'));
    const link = this.#link;
    if (!this.#probed && this.#meta.state === State.complete && this.#meta.size > this.#batch * this.#meta.chunkSize) {
      this.#probed = true;
      // A request with a reply of a few bytes, sent before the batch: the latency alone, which the
      // batch's own round trip mixes with the transfer of its bytes. Only for a file of more than
      // one batch: a small file needs no read-ahead.
      probeLink(this.#client, 'read', () => this.#client.send(this.#chunksKey, ['EXISTS', this.#chunksKey]));
    }
    const sent = link.sent(0);
    const entries = this.#rangeAfter(after, count, upTo);
    entries.then(
      (raw) => {
        let bytes = 0;
        for (const [, fields] of raw) for (const f of fields) bytes += f.length;
        link.answered({ ...sent, bytes });
      },
      () => {},
    );
    return entries;
  }

  /**
   * Up to `count` entries after the id `after` (exclusive; `0-0` takes the header too), up to the
   * last piece of chunk `upTo` (undefined: to the stream's end).
   */
  async #rangeAfter(after: string, count: number, upTo?: number): Promise<RawEntry[]> {
    try {
      const key = this.#chunksKey;
      const from = after === '0-0' ? '-' : `(${after}`;
      const to = upTo === undefined ? '+' : boundId(upTo);
      return (await this.#client.send(key, ['XRANGE', key, from, to, 'COUNT', count], true)) as RawEntry[];
    } catch (err) {
      throw wrapRedisError(err, this.key, `reading after entry ${after}`);
    }
  }

  #reportPosition(): Promise<void> {
    if (!this.#consumer?.tracking || this.#done) return Promise.resolve();
    return this.#consumer.report(() => ({ length: this.readableLength, encoding: this.readableEncoding }));
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
      const consumer = this.#consumer;
      gunzip.write(bytes, consumer?.tracking ? () => consumer.decoded(through, gunzip.readableLength) : undefined);
    } else {
      this.#consumer?.pushed(bytes.length);
      if (!this.push(bytes)) this.#wanted = false;
    }
  }

  /** The size of the file, once known: what a full read will deliver. */
  #total(): number | undefined {
    return this.#meta.state === State.complete ? this.#meta.size : undefined;
  }

  /**
   * Every byte the read is to deliver is out: at the end record, at the end of a range, or, with
   * `inside` (a `follow: false` read of a file still being written), at the pieces stored now.
   */
  #finish(inside = false): void {
    this.#done = true;
    this.#progress.tick(this.#delivered, this.#total() ?? this.#seq.position, true);
    this.#watch.close();
    if (!this.#gunzip) this.#end();
    else if (inside) this.#stopInside(this.#gunzip);
    else this.#gunzip.end();
  }

  /**
   * The read stops inside the gzip data (the rest is not written yet): what the stored pieces
   * decode to is delivered and the read ends normally, where ending the gunzip would fail on the
   * unfinished member. The flush hands on everything decoded; the stream ends once the gunzip's
   * buffer is empty too (it may be paused by backpressure).
   */
  #stopInside(gunzip: Gunzip): void {
    gunzip.flush(zlibConstants.Z_SYNC_FLUSH, () => {
      if (this.destroyed) return;
      this.#stoppedInside = true;
      this.#endInside();
    });
  }

  #endInside(): void {
    const gunzip = this.#gunzip!;
    if (gunzip.readableLength > 0 || this.#endedInside) return;
    // zlib may have stopped early at a member followed by a zero byte: the rest is not gzip data.
    if (gunzip.bytesWritten !== this.#delivered) {
      this.destroy(decodeFailed(this.key, trailingData(gunzip.bytesWritten)));
      return;
    }
    this.#endedInside = true;
    this.#end();
  }

  /**
   * The last bytes are out (and decoded): a consumer acknowledges the file once the application
   * has taken them all, then the stream ends. Only a read of the whole file, checked by its end
   * record, counts; a stream destroyed before its buffer was emptied acknowledges nothing.
   */
  #end(): void {
    if (!this.#consumer || !this.#readToEnd || !this.#opts.ackAtEnd) {
      this.push(null);
      return;
    }
    if (this.readableLength === 0) this.#ackThenEnd();
    else this.#ackWhenTaken = true;
  }

  #ackThenEnd(): void {
    this.#ackWhenTaken = false;
    this.#consumer!.ack().then(
      () => this.push(null),
      (err: unknown) => this.destroy(err as Error),
    );
  }
}

/**
 * Entries a request for a complete file's chunks takes at most: chunks stored whole are a batch
 * of entries, but a slowly written log may hold thousands of small pieces per chunk. Bounds the
 * objects one reply makes (its bytes are bounded by the chunks asked for).
 */
const ENTRY_CAP = 1024;

/**
 * A batch asked for: the entries after the id `after`, `count` at most, up to the last piece of
 * chunk `upTo` (undefined: to the stream's end).
 */
interface Request {
  readonly after: string;
  readonly count: number;
  readonly upTo: number | undefined;
  readonly entries: Promise<RawEntry[]>;
}

/** The last id of chunk `n`'s pieces: where a batch bounded at chunk `n` ends. */
function boundId(n: number): string {
  return idBefore(n + 1, FIRST_PIECE);
}

/** The chunk the id `after` is in; -1 before chunk 0 (`0-0` and the header). */
function chunkOf(after: string): number {
  if (after === '0-0' || after === HEADER_ID) return -1;
  return Number(after.slice(0, after.indexOf('-')));
}

/** Why a read with `decompress` fails when the gzip data ends before the file does. */
function trailingData(gzipBytes: number): Error {
  return new Error(
    `the gzip data ends at byte ${gzipBytes} and more of the file follows it (bytes after the last gzip member, zero padding too, cannot be decompressed)`,
  );
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
 * While the file is being written the reader follows it with blocking reads on connections of their
 * own, shared by the followers of one client (set `follow: false` to stop at what is stored now). Every piece is checked before any of its
 * bytes go out: its place in the file, its size and its CRC-32; a full read also checks the end
 * record's CRC-32 of the whole file.
 *
 * The file is opened at the first read (a pipe, a `'data'` listener, iteration): a stream nobody
 * reads asks Redis nothing, and so reports nothing, a missing file included.
 *
 * @param client - the caller's Redis client, shared with the caller: an ioredis or iovalkey `Redis` or
 *   `Cluster`, or a node-redis client or cluster (`createClient()`, `createCluster()`)
 * @param key - the file's name
 * @throws TypeError / RangeError for bad arguments, at the call
 * @example
 * ```ts
 * await pipeline(createRedisReadStream(redis, 'logs/2026-11-30.gz', { decompress: true }), parse(), aggregate);
 * ```
 */
export function createRedisReadStream(client: RedisClient, key: string, options?: ReadStreamOptions): RedisReadStream {
  checkClientAndKey(client, key);
  return new RedisReadStream(portOf(client), key, resolveReadOptions(options));
}

/**
 * A read stream with options already resolved (and possibly adjusted by the package itself).
 * @internal
 */
export function openRedisReadStream(client: RedisPort, key: string, options: ResolvedReadOptions): RedisReadStream {
  return new RedisReadStream(client, key, options);
}
