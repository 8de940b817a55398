/**
 * What a reader watches besides the bytes: the file's events (created, removed, resumed), the
 * blocking waits for a file to appear and for entries to arrive, whether the writer is alive, and
 * gaps that may yet be repaired.
 * @internal
 * @module
 */

import {
  type BlockingMember,
  compareIds,
  joinBlockingReads,
  type RawEntry,
  type StreamPosition,
} from './blocking-reads.js';
import { aborted, badFormat, corrupt, notFound, outOfRange, timeout, wrapRedisError } from './errors.js';
import { serverMs } from './file-stat.js';
import {
  Event,
  type FileKeys,
  Flag,
  isMetaProblem,
  Limits,
  leaseLapsed,
  Meta,
  type MetaRecord,
  parseMeta,
  pieceId,
  State,
} from './format.js';
import { type RedisPort, toRecord } from './redis/port.js';
import { within } from './retry.js';
import { ABANDON, OPEN, run } from './scripts/index.js';
import type { Step } from './sequence.js';

/**
 * Longest single blocking wait. Between waits the reader checks that the file still exists and
 * that its writer is alive: an expired key or a server restarted without persistence sends no
 * event, so this bounds how late such a loss is noticed.
 */
const LIVENESS_INTERVAL_MS = 1000;

export type { RawEntry };

/** @internal Where a read starts and how many entries it asks for at once (see the open script). */
export interface FirstBatch {
  readonly start: number;
  /** The last byte of the range read (inclusive), Infinity for a read to the end. */
  readonly end: number;
  readonly readAhead: number;
  readonly readAheadBytes: number;
  /**
   * Bytes of entries at most for a file written under a memory limit: Redis holds a reply until
   * the reader takes it, and the writer's guard counts one such batch per consumer.
   */
  readonly guardedBytes: number;
}

/** @internal What {@link FileWatch.find} found: `first`, the first entries read with the hash, when it could. */
export interface Found {
  readonly meta: MetaRecord;
  readonly ttl: number;
  readonly now: number;
  readonly first?: { readonly entries: RawEntry[]; readonly count: number };
}

/**
 * Clients whose user may not run scripts (an ACL without EVALSHA, or with read access to the keys
 * only): their readers open a file command by command, without trying the script again each time.
 */
const scriptsRefused = new WeakSet<RedisPort>();

/** @internal */
export class FileWatch {
  readonly #client: RedisPort;
  readonly #key: string;
  readonly #keys: FileKeys;
  readonly #idleTimeout: number;
  /** Mark the file aborted once its writer's lease has lapsed (channel receivers do). */
  readonly #abandonStale: boolean;
  #meta: MetaRecord | undefined;
  #chunksKey = '';
  /** This reader's place in the blocking reads shared by every follower of the client. */
  #reads: BlockingMember | undefined;
  #lastEventId = '0-0';
  #lastHeartbeat: number | undefined;
  /** When the writer last showed progress (entries or a heartbeat), by this process's clock. */
  #lastProgress = 0;
  /** When a gap was first met (0: none). */
  #gapSince = 0;
  /** The entry expected at a gap that a read made after the file was settled still showed. */
  #gapSettled: string | undefined;
  /** A `resumed` event named the chunk a new writer cut the file back to. */
  #rewindTo: number | undefined;
  #closed = false;

  constructor(client: RedisPort, key: string, keys: FileKeys, options: { idleTimeout: number; abandonStale: boolean }) {
    this.#client = client;
    this.#key = key;
    this.#keys = keys;
    this.#idleTimeout = options.idleTimeout;
    this.#abandonStale = options.abandonStale;
  }

  /** The event position to watch from: the last event logged before the file was read. */
  set lastEventId(id: string) {
    this.#lastEventId = id;
  }

  /** Watch the file `meta` describes. */
  watch(meta: MetaRecord): void {
    this.#meta = meta;
    this.#chunksKey = this.#keys.chunks(meta.gen);
    this.#lastHeartbeat = meta.heartbeat;
    this.#lastProgress = Date.now();
  }

  /**
   * Leave the shared blocking reads at once: a pending wait ends, and the blocking connection is
   * closed when no other follower of the client waits on it.
   */
  close(): void {
    this.#closed = true;
    this.#reads?.leave();
    this.#reads = undefined;
  }

  /** Wait in the client's shared blocking reads; null when the time ran out or the watch closed. */
  #wait(streams: StreamPosition[], count: number, ms: number, park: boolean): Promise<Map<string, RawEntry[]> | null> {
    if (this.#closed) return Promise.resolve(null);
    this.#reads ??= joinBlockingReads(this.#client, this.#keys.events);
    return this.#reads.wait(streams, count, ms, park);
  }

  /** Block until an event is logged, at most `ms`. */
  async waitForEvent(ms: number, what: string): Promise<void> {
    try {
      // Not parked: the caller reads the file again before it waits from elsewhere.
      await this.#wait([[this.#keys.events, this.#lastEventId]], 1, ms, false);
    } catch (err) {
      if (!this.#closed) throw wrapRedisError(err, this.#key, what);
    }
  }

  /**
   * Find the file: its parsed hash, TTL (s) and the server's clock (ms); waiting up to
   * `waitForCreate` ms for it to be created. With `batch`, also the first entries a read from
   * `batch.start` asks for, read in the same round trip (by the open script). Undefined when
   * closed meanwhile.
   */
  async find(waitForCreate: number, batch?: FirstBatch): Promise<Found | undefined> {
    const deadline = Date.now() + waitForCreate;
    for (;;) {
      // While it waits for the file, a look that Redis does not answer (a stalled server holds a
      // command for as long as it is stopped, and the client may have no command timeout) ends
      // once the wait is over and idleTimeout has passed since it was sent, as a follower would.
      const looked = this.#look(batch);
      const allowed = Math.max(deadline - Date.now(), this.#idleTimeout);
      const { lastEvent, rawMeta, ttl, time, first } = await (waitForCreate === 0 || allowed === Infinity
        ? looked
        : within(looked, allowed, () => {
            throw timeout(
              this.#key,
              `no file was found at this key within waitForCreate (${waitForCreate} ms): Redis has not answered the last look for it in ${Math.round(allowed)} ms (idleTimeout: ${this.#idleTimeout} ms)`,
            );
          }));
      if (this.#closed) return undefined;
      this.#lastEventId = lastEvent;
      const meta = parseMeta(rawMeta);
      if (isMetaProblem(meta)) {
        throw meta.problem === 'format' ? badFormat(this.#key, meta.detail) : corrupt(this.#key, meta.detail);
      }
      if (meta !== undefined) return { meta, ttl, now: serverMs(time), ...(first ? { first } : {}) };
      // Only a reader finds a file: it may be one started before its writer.
      if (waitForCreate === 0)
        throw notFound(this.#key, 'no file is stored at this key (`waitForCreate` waits for one)');
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw timeout(this.#key, `no file appeared at this key within waitForCreate (${waitForCreate} ms)`);
      }
      await this.waitForEvent(remaining, 'waiting for the file to be created');
      if (this.#closed) return undefined;
    }
  }

  /**
   * The event position, the hash, its TTL and the server's clock, in one round trip: with `batch`,
   * the open script, which adds the first entries; else (or where scripts are refused, or a key
   * holds another type) four commands sent together.
   */
  async #look(batch: FirstBatch | undefined): Promise<{
    lastEvent: string;
    rawMeta: Record<string, string>;
    ttl: number;
    time: (string | number)[];
    first?: Found['first'];
  }> {
    if (batch && !scriptsRefused.has(this.#client)) {
      try {
        const reply = await run(
          this.#client,
          OPEN,
          { meta: this.#keys.meta, events: this.#keys.events },
          {
            chunks: this.#keys.chunks(''),
            start: batch.start,
            last: batch.end === Infinity ? -1 : batch.end,
            readAhead: batch.readAhead,
            readAheadBytes: batch.readAheadBytes,
            guardedBytes: batch.guardedBytes,
          },
        );
        if (reply.status === 'ok') {
          const { lastEvent, meta: rawMeta, ttl, time, first } = reply;
          return { lastEvent, rawMeta, ttl, time, first };
        }
      } catch (err) {
        if (!(err instanceof Error && err.message.startsWith('NOPERM'))) {
          throw wrapRedisError(err, this.#key, 'reading the metadata');
        }
        scriptsRefused.add(this.#client);
      }
    }
    let rawMeta: Record<string, string>;
    let lastEvent: [string, string[]][];
    let ttl: number;
    let time: (string | number)[];
    try {
      // Sent together, in this order on one connection: the event position first, then the
      // metadata, so that a file created in between is seen by the second, and one created after
      // it logs an event past the position. One round trip.
      const { events, meta } = this.#keys;
      const client = this.#client;
      [lastEvent, rawMeta, ttl, time] = await Promise.all([
        client.send(events, ['XREVRANGE', events, '+', '-', 'COUNT', 1]) as Promise<[string, string[]][]>,
        client.send(meta, ['HGETALL', meta]).then(toRecord),
        client.send(meta, ['TTL', meta]).then(Number),
        client.send(meta, ['TIME']) as Promise<(string | number)[]>,
      ]);
    } catch (err) {
      throw wrapRedisError(err, this.#key, 'reading the metadata');
    }
    return { lastEvent: lastEvent[0]?.[0] ?? '0-0', rawMeta, ttl, time };
  }

  /** The chunk a new writer cut the file back to, once: the reader reads again from there. */
  takeRewind(): number | undefined {
    const cut = this.#rewindTo;
    this.#rewindTo = undefined;
    return cut;
  }

  /** Entries arrived: the writer is making progress, and a gap met before is behind. */
  progressed(): void {
    this.#lastProgress = Date.now();
    this.#gapSince = 0;
  }

  /**
   * Wait for entries after `after` (at most `count`), or an event, at most the liveness interval.
   * Returns the entries; none when the wait ran out (after checking the file) or only events came.
   */
  async waitForEntries(after: string, count: number): Promise<RawEntry[]> {
    const idleLeft = this.#idleTimeout - (Date.now() - this.#lastProgress);
    const block = Math.max(1, Math.min(LIVENESS_INTERVAL_MS, idleLeft));
    let reply: Map<string, RawEntry[]> | null;
    try {
      reply = await this.#wait(
        [
          [this.#chunksKey, after],
          [this.#keys.events, this.#lastEventId],
        ],
        count,
        block,
        true,
      );
    } catch (err) {
      if (this.#closed) return [];
      throw wrapRedisError(err, this.#key, `waiting for entries after ${after}`);
    }
    if (this.#closed) return [];
    const events = reply?.get(this.#keys.events);
    if (events !== undefined) this.#onEvents(events);
    const entries = reply?.get(this.#chunksKey) ?? [];
    if (entries.length > 0) this.#lastProgress = Date.now();
    else if (reply === null) {
      // Bounded by idleTimeout (at least the liveness interval): a connection that stops answering
      // (a stalled link, a stopped server) must not hold a follower longer than a writer that
      // stops writing does.
      const left = Math.max(LIVENESS_INTERVAL_MS, this.#lastProgress + this.#idleTimeout - Date.now());
      const waiting = await within(this.checkFile(true, after), left, () => {
        throw timeout(this.#key, `Redis did not answer for idleTimeout (${this.#idleTimeout} ms)`);
      });
      // Entries the blocking read did not see (its connection sees another database: a node-redis
      // client that ran SELECT after it connected) are read through the client itself.
      if (waiting) return this.#entriesAfter(after, count);
    }
    return entries;
  }

  async #entriesAfter(after: string, count: number): Promise<RawEntry[]> {
    try {
      const key = this.#chunksKey;
      const from = after === '0-0' ? '-' : `(${after}`;
      return (await this.#client.send(key, ['XRANGE', key, from, '+', 'COUNT', count], true)) as RawEntry[];
    } catch (err) {
      throw wrapRedisError(err, this.#key, `reading after entry ${after}`);
    }
  }

  #onEvents(items: RawEntry[]): void {
    const gen = this.#meta?.gen;
    for (const [id, fields] of items) {
      this.#lastEventId = id.toString();
      const name = fields[0]?.toString();
      const of = fields[1]?.toString();
      if (name === Event.removed && of === gen) throw notFound(this.#key, 'the file was removed while being read');
      if (name === Event.created && of !== gen) throw notFound(this.#key, 'the file was replaced while being read');
      if (name === Event.resumed && of === gen) {
        const cut = Number(fields[3]?.toString());
        if (Number.isSafeInteger(cut)) this.#rewindTo = Math.min(cut, this.#rewindTo ?? cut);
      }
    }
  }

  /** Read the events logged since the last one seen; true when a new writer resumed the file. */
  async resumedMeanwhile(): Promise<boolean> {
    let items: RawEntry[];
    try {
      const { events } = this.#keys;
      items = (await this.#client.send(events, ['XRANGE', events, `(${this.#lastEventId}`, '+'], true)) as RawEntry[];
    } catch (err) {
      throw wrapRedisError(err, this.#key, 'reading the events of the file');
    }
    this.#onEvents(items);
    return this.#rewindTo !== undefined;
  }

  /**
   * Entry `found` came where `expected` should have (`chunk` is the chunk being read). A reader that
   * does not follow, or a writer that lost acknowledged pieces: the gap is damage at once; a file no
   * longer being written, or a writer whose lease has lapsed: once a read made after this look at
   * the hash still shows it. While a live writer holds the file it can be passing: after Redis
   * refused a piece (out of memory), later pieces may be stored before the writer deletes them and
   * writes again from the refused one, announcing it with a `repaired` event. So wait for an event
   * (or the liveness interval) and let the reader read again, for at most `idleTimeout`.
   */
  async waitOutGap(expected: string, found: string, chunk: number, following: boolean): Promise<void> {
    const gap = corrupt(this.#key, `expected entry ${expected}, found ${found}: entries are missing`);
    if (!following) throw gap;
    this.#gapSince ||= Date.now();
    const waited = Date.now() - this.#gapSince;
    let fields: (string | null)[];
    let time: (string | number)[];
    try {
      const { meta } = this.#keys;
      const names = [Meta.state, Meta.trimmed, Meta.lost, Meta.heartbeat, Meta.heartbeatInterval];
      [fields, time] = await Promise.all([
        this.#client.send(meta, ['HMGET', meta, ...names]) as Promise<(string | null)[]>,
        this.#client.send(meta, ['TIME']) as Promise<(string | number)[]>,
      ]);
    } catch (err) {
      throw wrapRedisError(err, this.#key, 'checking the file');
    }
    const [state, trimmed, lost, heartbeat, interval] = fields;
    if (Number(trimmed ?? 0) > chunk) throw trimmedError(this.#key, Number(trimmed), chunk);
    if (lost === Flag.yes) throw abortedError(this.#key, true);
    if (state === State.aborted) throw aborted(this.#key, 'the writer aborted this file before it was complete');
    if (
      state !== State.writing ||
      leaseLapsed(Number(heartbeat), Number(interval), serverMs(time)) ||
      waited >= this.#idleTimeout
    ) {
      // The entries that showed the gap were read before the hash: a writer that repaired its
      // stream (a piece lost with a dropped connection, later ones stored) may have filled the gap,
      // and even completed the file, since. The reader reads once more before the gap counts.
      if (this.#gapSettled === expected) throw gap;
      this.#gapSettled = expected;
      return;
    }
    await this.waitForEvent(
      Math.max(1, Math.min(LIVENESS_INTERVAL_MS, this.#idleTimeout - waited)),
      `waiting for entry ${expected}`,
    );
  }

  /**
   * The end or abort record is written in one step with the hash's state: they must agree, and the
   * end record is the authority on the sizes and the CRC, which the hash must repeat.
   */
  async checkAgainstMeta(
    record: Extract<Step, { kind: 'end' | 'abort' }>,
  ): Promise<{ state: string | null; lost: string | null }> {
    const m = this.#meta!;
    let [gen, state, size, chunks, crc, lost]: (string | null)[] = [
      m.gen,
      m.state,
      String(m.size),
      String(m.chunks),
      m.crc32,
      m.lost ? Flag.yes : null,
    ];
    if (m.state !== State.complete) {
      try {
        const { meta } = this.#keys;
        const names = [Meta.gen, Meta.state, Meta.size, Meta.chunks, Meta.crc32, Meta.lost];
        [gen, state, size, chunks, crc, lost] = (await this.#client.send(meta, ['HMGET', meta, ...names])) as (
          | string
          | null
        )[];
      } catch (err) {
        throw wrapRedisError(err, this.#key, 'checking the file');
      }
      // Consumers that all acknowledged it deleted it right after its end record was read: every
      // piece was checked already, and there is nothing left to compare with.
      if (gen === null && record.kind === 'end') return { state, lost };
    }
    if (gen !== m.gen) throw notFound(this.#key, 'the file was removed, replaced or expired while being read');
    if (record.kind === 'abort') return { state, lost };
    if (state !== State.complete)
      throw corrupt(this.#key, `the stream holds an end record but the metadata hash says ${state}`);
    if (size !== String(record.size) || chunks !== String(record.chunks) || crc !== record.crc32) {
      throw corrupt(
        this.#key,
        `the metadata hash says ${size} bytes in ${chunks} chunks, crc32 ${crc}; the end record says ${record.size} bytes in ${record.chunks} chunks, crc32 ${record.crc32}`,
      );
    }
    return { state, lost };
  }

  /**
   * Nothing new arrived after entry `after`: make sure the file is still there, that a complete
   * file's entries are not missing, and (when following) that the writer is alive. Returns true
   * when entries are waiting to be read after all.
   */
  async checkFile(following: boolean, after: string): Promise<boolean> {
    const meta = this.#meta!;
    let gen: string | null, state: string | null, heartbeat: string | null, lost: string | null, streamExists: number;
    let size: string | null, chunks: string | null;
    try {
      [[gen, state, heartbeat, lost, size, chunks], streamExists] = await Promise.all([
        this.#client.send(this.#keys.meta, [
          'HMGET',
          this.#keys.meta,
          Meta.gen,
          Meta.state,
          Meta.heartbeat,
          Meta.lost,
          Meta.size,
          Meta.chunks,
        ]) as Promise<(string | null)[]>,
        this.#client.send(this.#chunksKey, ['EXISTS', this.#chunksKey]).then(Number),
      ]);
    } catch (err) {
      throw wrapRedisError(err, this.#key, 'checking the file');
    }
    if (this.#closed) return false;
    if (gen !== meta.gen) throw notFound(this.#key, 'the file was removed, replaced or expired while being read');
    // The metadata is there but the chunks are not: evicted under memory pressure, or lost.
    if (streamExists === 0)
      throw corrupt(this.#key, 'its chunk stream is gone (evicted or deleted) while its metadata remains');
    // Of one file (the same generation), a state goes from writing to complete or aborted, never
    // back: Redis lost the end of the file (a restart from an older snapshot, or a failover to a
    // replica that had not got it). What is stored now is not the file that was complete.
    if (meta.state === State.complete && state !== State.complete) {
      throw corrupt(
        this.#key,
        `the file was complete when the read began and Redis now holds it in state ${state}: its end was lost (a restart from an older snapshot, or a failover)`,
      );
    }
    if (state === State.aborted || state === State.complete) {
      // The end or abort record is stored in the same step as the state: read on to it (or to
      // the gap before it).
      if (await this.#anythingAfter(after)) return true;
      if (state === State.aborted) throw abortedError(this.#key, lost === Flag.yes);
      // A read that starts past the end of a file still being written when it opened: the end
      // record lies before the read's first entry.
      // The end record of a file of n chunks is record n.
      if (chunks !== null && /^\d+$/.test(chunks) && compareIds(after, pieceId(Number(chunks))) > 0) {
        throw outOfRange(this.#key, `the read starts past the end of the file, which was completed with ${size} bytes`);
      }
      throw corrupt(this.#key, `the file is complete but nothing is stored after entry ${after}`);
    }
    if (!following) return false;
    if (Number(heartbeat) !== this.#lastHeartbeat) {
      this.#lastHeartbeat = Number(heartbeat);
      this.#lastProgress = Date.now();
    } else if (this.#abandonStale && Date.now() - this.#lastProgress > Limits.leaseFactor * meta.heartbeatInterval) {
      await this.#abandon();
    } else if (Date.now() - this.#lastProgress >= this.#idleTimeout) {
      throw timeout(this.#key, `the writer made no progress for idleTimeout (${this.#idleTimeout} ms)`);
    }
    return false;
  }

  async #anythingAfter(after: string): Promise<boolean> {
    return (await this.#entriesAfter(after, 1)).length > 0;
  }

  /**
   * The writer has been silent for as long as its lease lasts: when the server agrees that the
   * lease is stale, the file is marked aborted for every reader, this one first.
   */
  async #abandon(): Promise<void> {
    const meta = this.#meta!;
    const lease = Limits.leaseFactor * meta.heartbeatInterval;
    const reason = `its writer stopped: no heartbeat for ${lease} ms (${Limits.leaseFactor} intervals), so its lease lapsed`;
    let reply: Awaited<ReturnType<typeof ABANDON.decode>>;
    try {
      reply = await run(
        this.#client,
        ABANDON,
        { meta: this.#keys.meta, chunks: this.#chunksKey },
        { gen: meta.gen, reason },
      );
    } catch (err) {
      throw wrapRedisError(err, this.#key, 'marking the file of a dead writer aborted');
    }
    if (reply.status === 'marked') throw aborted(this.#key, `the file was marked aborted: ${reason}`);
    if (reply.status === 'missing')
      throw notFound(this.#key, 'the file was removed, replaced or expired while being read');
    // 'alive': a heartbeat came just now, which the next check sees; 'settled': the file was
    // completed or aborted meanwhile, which the next read shows.
  }
}

/** @internal The error of a file whose writer aborted: CORRUPT when Redis had lost acknowledged pieces. */
export function abortedError(key: string, lost: boolean): Error {
  return lost
    ? corrupt(
        key,
        'Redis lost pieces that it had acknowledged to the writer (in a failover to a replica that had not got them, or in a restart from an older snapshot), and the writer aborted',
      )
    : aborted(key, 'the writer aborted this file before it was complete');
}

/** @internal The error of a read that needs chunks consumers trimmed. */
export function trimmedError(key: string, trimmed: number, wanted: number): Error {
  return notFound(
    key,
    `chunks 0 to ${trimmed - 1} were trimmed once every consumer had read them; this read needs chunk ${wanted}`,
  );
}
