/**
 * The writer's window of piece writes: numbering, sending with a bounded number in flight,
 * acknowledging in order, and repairing the stream when Redis refused or lost a piece. A piece is a
 * whole chunk, or the part of a chunk a flush sent before the chunk was full.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';
import type { RawEntry } from './blocking-reads.js';
import type { ChunkBuffer } from './chunker.js';
import { crc32, crc32Combine, formatCrc } from './crc.js';
import { aborted, corrupt, isRetryable, RedisFileError, timeout, wrapRedisError } from './errors.js';
import { FIRST_PIECE, Field, type FileKeys, HEADER_ID, pieceId } from './format.js';
import type { Arg, RedisPort } from './redis/port.js';
import { encodeAround } from './redis/resp.js';
import { nextDelay, RETRY_MIN_MS } from './retry.js';
import { REPAIR, run } from './scripts/index.js';
import { LinkEstimate, linkMemory, type Sent } from './window-size.js';

/**
 * Bytes in flight, as a multiple of what the link holds in a round trip: the probe measures the
 * latency short by the time the event loop was busy, round trips under load run longer than the
 * probe's, and the window must lead the throughput for the throughput to grow with it.
 */
const WINDOW_GAIN = 4;

/** A piece cut from the input and not yet acknowledged by Redis. */
interface PendingPiece {
  readonly n: number;
  readonly s: number;
  readonly id: string;
  /** Where its bytes start in the file. */
  readonly offset: number;
  readonly data: Buffer;
  /** CRC-32 of the piece's bytes, as stored with it. */
  readonly crc: string;
  /** CRC-32 of the file up to and including this piece. */
  readonly fileCrc: number;
  /** The chunk's buffer, when this piece fills the chunk. */
  readonly chunk: ChunkBuffer | undefined;
  acked: boolean;
  /** When it was last sent, for the link's estimate (not for a check of a retried write). */
  sent: Sent | undefined;
  /** Last sent while the claim of the file was still on its way (see {@link ChunkWindow.claimed}). */
  early: boolean;
}

/**
 * Pieces as messages name them: their bytes in the file, which a user knows, then their ids in the
 * chunk stream (docs/format.md), which `XRANGE` finds.
 */
function piecesText(first: PendingPiece, last: PendingPiece = first): string {
  const bytes = `bytes ${first.offset} to ${last.offset + last.data.length - 1}`;
  return first === last ? `${bytes} (piece ${first.id})` : `${bytes} (pieces ${first.id} to ${last.id})`;
}

/** @internal What the window needs from the stream that owns it. */
export interface ChunkWindowOwner {
  readonly client: RedisPort;
  /** The file's key, for error messages. */
  readonly key: string;
  readonly keys: FileKeys;
  readonly chunksKey: string;
  readonly writer: string;
  readonly chunkSize: number;
  /**
   * The most pieces in flight and the most bytes (the window grows up to these, with the link), and
   * the pieces the window holds at least (as whole chunks, within the bytes).
   */
  readonly maxInFlight: number;
  readonly maxInFlightBytes: number;
  readonly minInFlight: number;
  readonly retryTimeout: number;
  /** Replicas that must hold a chunk before it counts (`WAIT`), 0 for none; and how long to wait. */
  readonly waitReplicas: number;
  readonly waitTimeout: number;
  /** Chunks were acknowledged: there may be room again. */
  onAck(): void;
  /** The window cannot go on. */
  onFail(err: Error): void;
  /**
   * A chunk is stored for good: all its pieces acknowledged, with every piece before them. Nothing
   * sends them again (a repair only rewrites pieces past the acknowledged prefix, and ioredis
   * re-sends only commands left unanswered), so its buffer may be filled again.
   */
  release?(chunk: ChunkBuffer): void;
  /**
   * When set, chunks are sent only once this says so: returns true when sending may go on now,
   * or a promise that resolves when it may (a memory limit), and the window then asks again.
   */
  admit?(bytes: number): true | Promise<void>;
}

/** @internal */
export class ChunkWindow {
  readonly #owner: ChunkWindowOwner;
  /** The chunk the next piece belongs to, and its piece number. */
  #chunk = 0;
  #seq = FIRST_PIECE;
  /** Pieces cut so far, the next one to send, their bytes, their CRC-32 and the last one's id. */
  #next = 0;
  #nextToSend = 0;
  #bytes = 0;
  #crc = 0;
  #lastId: string = HEADER_ID;
  /** Pieces cut and not yet acknowledged, by number. */
  readonly #pending = new Map<number, PendingPiece>();
  #pendingBytes = 0;
  #inFlight = 0;
  #inFlightBytes = 0;
  /** Whether the file's claim is still on its way (pieces are marked `early` then). */
  #claimPending: boolean;
  /** Whether a piece sent behind the claim was not stored. */
  #lostEarly = false;
  /** The bytes that may be in flight now: between the floor and the budget, following the link. */
  #windowBytes: number;
  readonly #floorBytes: number;
  readonly #link: LinkEstimate;
  /** The acknowledged prefix: pieces, bytes, the last one's id; and its whole chunks (what a resume continues). */
  #committedPieces = 0;
  #committedBytes = 0;
  #committedId: string = HEADER_ID;
  #wholeChunks = 0;
  #wholeBytes = 0;
  #wholeCrc = 0;
  #recovering = false;
  #admitting = false;
  #troubleSince = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /**
   * With `waitReplicas`: pieces to store, sent together with one WAIT once the WAIT before them
   * has answered (each WAIT holds the connection up to waitTimeout, so that WAITs queued behind
   * each other would each wait that long), and whether one is on its way.
   */
  readonly #replicaQueue: { piece: PendingPiece; resolve(id: unknown): void; reject(err: unknown): void }[] = [];
  #replicating = false;
  #replicaTurn = false;

  /**
   * @param claimPending - the file's claim is on its way, sent before any piece on the same
   *   connection: pieces go out behind it without waiting for its answer. Call {@link claimed}
   *   once it succeeded.
   */
  constructor(owner: ChunkWindowOwner, claimPending = false) {
    this.#owner = owner;
    this.#claimPending = claimPending;
    this.#floorBytes = Math.min(owner.minInFlight * owner.chunkSize, owner.maxInFlightBytes);
    // What earlier streams on this connection learned: a stream across a long link starts deep.
    this.#link = new LinkEstimate(linkMemory(owner.client, 'write'));
    this.#windowBytes = this.#sized();
  }

  /**
   * Continue a stored prefix of whole chunks (a resumed file): `pieces` entries stored so far (the
   * trimmed ones included), the last of them `last`.
   */
  startAt(chunks: number, bytes: number, crc: number, pieces: number, last: string): void {
    this.#chunk = this.#wholeChunks = chunks;
    this.#seq = FIRST_PIECE;
    this.#next = this.#nextToSend = this.#committedPieces = pieces;
    this.#bytes = this.#committedBytes = this.#wholeBytes = bytes;
    this.#crc = this.#wholeCrc = crc;
    this.#lastId = this.#committedId = last;
  }

  /** What the end record states and the commit checks: pieces cut, chunks, bytes, CRC-32, the last id. */
  get cut(): { pieces: number; chunks: number; bytes: number; crc: number; last: string } {
    const chunks = this.#seq > FIRST_PIECE ? this.#chunk + 1 : this.#chunk;
    return { pieces: this.#next, chunks, bytes: this.#bytes, crc: this.#crc, last: this.#lastId };
  }

  get committedBytes(): number {
    return this.#committedBytes;
  }

  /** Chunks with acknowledged bytes (the last may be partly filled). */
  get committedChunks(): number {
    return Math.ceil(this.#committedBytes / this.#owner.chunkSize);
  }

  /** The acknowledged prefix of whole chunks, with its CRC-32: where a resume would continue. */
  get whole(): { chunks: number; bytes: number; crc: number } {
    return { chunks: this.#wholeChunks, bytes: this.#wholeBytes, crc: this.#wholeCrc };
  }

  /** Pieces not yet acknowledged. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Pieces cut and not sent yet: held back by the memory guard, or by a repair under way. */
  get unsent(): number {
    return this.#next - this.#nextToSend;
  }

  /**
   * Whether another chunk may be cut: there is room for a whole one in the window (pieces cut by a
   * flush may be smaller), or nothing is pending at all, however small the budget.
   */
  hasRoom(): boolean {
    const pending = this.#pending.size;
    if (pending === 0) return true;
    return pending < this.#owner.maxInFlight && this.#pendingBytes + this.#owner.chunkSize <= this.#windowBytes;
  }

  /**
   * `gain` × the link's bandwidth-delay product, within the floor and the budget. The budget bounds
   * the chunk buffers kept for re-sends: they are the writer's memory.
   */
  #sized(): number {
    const wanted = Math.max(this.#floorBytes, this.#link.product(WINDOW_GAIN));
    return Math.min(this.#owner.maxInFlightBytes, wanted);
  }

  /**
   * Number the next piece and send it. `chunk` is the chunk's buffer when this piece fills it (the
   * next piece then starts the next chunk). The window keeps `data` until Redis acknowledged it.
   */
  queue(data: Buffer, chunk?: ChunkBuffer): void {
    const pieceCrc = crc32(data);
    this.#crc = crc32Combine(this.#crc, pieceCrc, data.length);
    const offset = this.#bytes;
    this.#bytes += data.length;
    const n = this.#chunk;
    const s = this.#seq;
    const id = pieceId(n, s);
    if (chunk) {
      this.#chunk++;
      this.#seq = FIRST_PIECE;
    } else {
      this.#seq++;
    }
    this.#lastId = id;
    this.#pendingBytes += data.length;
    this.#pending.set(this.#next++, {
      n,
      s,
      id,
      offset,
      data,
      crc: formatCrc(pieceCrc),
      fileCrc: this.#crc,
      chunk,
      acked: false,
      sent: undefined,
      early: false,
    });
    this.#sendQueued();
  }

  /**
   * The claim sent before the first pieces succeeded. A piece sent behind it that Redis did not
   * store (the claim was refused at first, or ran again after NOSCRIPT, and the chunk stream did
   * not exist yet) is sent again, as after any refused piece.
   */
  claimed(): void {
    this.#claimPending = false;
    if (this.#lostEarly) this.#recover(new Error('pieces sent behind the claim of the file were not stored'));
    this.#lostEarly = false;
  }

  /** A piece sent behind the claim was not stored: sent again once the claim is granted. */
  #lostBehindClaim(piece: PendingPiece): void {
    piece.sent = undefined;
    this.#lostEarly = true;
    if (!this.#claimPending) this.#recover(new Error('a piece sent behind the claim of the file was not stored'));
  }

  /** Send nothing more and drop any retry timer. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    // Pieces not sent yet never will be.
    for (const { reject } of this.#replicaQueue.splice(0)) reject(new Error('the writer stopped'));
  }

  /**
   * Send queued chunks while the window has room for them (pieces and bytes): one large write
   * queues many chunks at once, and they still go out a window at a time, each past the memory
   * guard.
   */
  #sendQueued(): void {
    while (
      !this.#recovering &&
      !this.#stopped &&
      !this.#admitting &&
      this.#nextToSend < this.#next &&
      this.#inFlight < this.#owner.maxInFlight &&
      (this.#inFlight === 0 ||
        this.#inFlightBytes + (this.#pending.get(this.#nextToSend)?.data.length ?? 0) <= this.#windowBytes)
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
      const i = this.#nextToSend++;
      const piece = this.#pending.get(i);
      if (piece && !piece.acked) this.#send(i, piece);
    }
  }

  #send(i: number, piece: PendingPiece): void {
    const { waitReplicas } = this.#owner;
    this.#inFlight++;
    this.#inFlightBytes += piece.data.length;
    piece.sent = this.#link.sent(piece.data.length);
    piece.early = this.#claimPending;
    const stored = waitReplicas > 0 ? this.#storeReplicated(piece) : this.#store(piece);
    stored.then(
      (id) => {
        this.#inFlight--;
        this.#inFlightBytes -= piece.data.length;
        if (id !== null) this.#ack(i);
        // Sent before the file existed (NOMKSTREAM stored nothing): sent again once it does.
        else if (piece.early) this.#lostBehindClaim(piece);
        else
          this.#fail(
            aborted(
              this.#owner.key,
              'the file was removed, or taken over by another writer, while it was being written',
            ),
          );
      },
      (err: unknown) => {
        this.#inFlight--;
        this.#inFlightBytes -= piece.data.length;
        // Refused behind a claim not answered yet (an ACL that refuses the file's keys refuses
        // both): the claim's outcome decides. Refused, it fails the stream with its own error;
        // granted, the piece is sent again, and fails on its own if it must.
        if (piece.early && this.#claimPending) this.#lostBehindClaim(piece);
        else {
          piece.sent = undefined;
          this.#onWriteError(i, piece, err);
        }
      },
    );
  }

  /**
   * The XADD of a piece. A whole chunk goes out encoded in its own buffer where the client would
   * copy it (see ./redis/resp.ts): the same bytes on the wire, one copy of the chunk fewer. The
   * buffer is filled again only once the chunk is acknowledged, so it stays as encoded until then,
   * and a piece sent again is encoded again with the same bytes. A command the client sends again
   * after its buffer was released (re-sent after a reconnection although it had timed out) is
   * encoded by the client from its arguments, never from bytes that changed under it.
   */
  #store(piece: PendingPiece): Promise<unknown> {
    const { client, chunksKey } = this.#owner;
    const { before, after } = this.#xadd(piece);
    const args: Arg[] = [...before, piece.data, ...after];
    const chunk = piece.chunk;
    if (client.sendEncoded !== undefined && chunk !== undefined && chunk.data === piece.data) {
      const wire = encodeAround(chunk.whole, chunk.at, piece.data.length, before, after);
      const reuses = chunk.reuses;
      if (wire !== undefined) return client.sendEncoded(chunksKey, args, wire, () => chunk.reuses === reuses);
    }
    return client.send(chunksKey, args);
  }

  /** The XADD that stores a piece: its arguments before the piece's bytes, and after them. */
  #xadd(piece: PendingPiece): { before: string[]; after: string[] } {
    const { chunksKey } = this.#owner;
    return { before: ['XADD', chunksKey, 'NOMKSTREAM', piece.id, Field.data], after: [Field.crc, piece.crc] };
  }

  /**
   * The XADDs of the pieces sent in one turn, then one WAIT, in one pipeline: on one connection, to
   * the node that holds the key (on a cluster, the node the slot map names, not through the
   * cluster client: see RedisPort.batch), so the WAIT covers these very writes. One such WAIT at a
   * time.
   */
  #storeReplicated(piece: PendingPiece): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#replicaQueue.push({ piece, resolve, reject });
      this.#replicateNext();
    });
  }

  #replicateNext(): void {
    if (this.#replicating || this.#replicaTurn || this.#replicaQueue.length === 0) return;
    // On the next turn: the pieces the window sends in this one go together.
    this.#replicaTurn = true;
    setImmediate(() => {
      this.#replicaTurn = false;
      if (this.#replicating || this.#stopped) return;
      const group = this.#replicaQueue.splice(0);
      if (group.length === 0) return;
      this.#replicating = true;
      const { client, chunksKey, waitReplicas, waitTimeout, key } = this.#owner;
      const commands = group.map(({ piece }) => {
        const { before, after } = this.#xadd(piece);
        return [...before, piece.data, ...after];
      });
      client.batch(chunksKey, [...commands, ['WAIT', waitReplicas, waitTimeout]]).then(
        (replies) => {
          this.#replicating = false;
          const [waitError, replicas] = replies[group.length] ?? [null, 0];
          // The error is made only when it is needed: not on the path of every group.
          const tooFew =
            (replicas as number) < waitReplicas
              ? timeout(
                  key,
                  `${piecesText(group[0]!.piece, group.at(-1)!.piece)} reached ${replicas} of ${waitReplicas} replicas within ${waitTimeout} ms`,
                )
              : undefined;
          for (const [j, { resolve, reject }] of group.entries()) {
            const [addError, id] = replies[j] ?? [null, null];
            if (addError) reject(addError);
            else if (id === null) resolve(null);
            else if (waitError || tooFew) reject(waitError ?? tooFew);
            else resolve(id);
          }
          // Too few replicas now: the pieces waiting behind would wait as long for the same
          // answer. They fail with it unsent, and go again with the others.
          if (waitError || tooFew) for (const { reject } of this.#replicaQueue.splice(0)) reject(waitError ?? tooFew);
          this.#replicateNext();
        },
        (err: unknown) => {
          this.#replicating = false;
          // The pieces behind go again with the others, not out past the ones that failed.
          for (const { reject } of [...group, ...this.#replicaQueue.splice(0)]) reject(err);
          this.#replicateNext();
        },
      );
    });
  }

  #onWriteError(i: number, piece: PendingPiece, err: unknown): void {
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
      // ioredis re-sends commands left unanswered by a dropped connection (other clients fail them,
      // and the window sends them again). If the first try did
      // reach Redis, the retry is refused, because its id is not above the top: the chunk is then
      // already stored, and is compared byte for byte instead of being stored twice. If it is not
      // there, later chunks overtook it across reconnections (ioredis does not always keep the
      // order of re-sent commands): that gap is repaired like one left by a refused write.
      // The check counts as in flight: a repair must not run before its answer is in.
      this.#inFlight++;
      this.#verifyStored(piece).then(
        (stored) => {
          this.#inFlight--;
          if (stored) this.#ack(i);
          else this.#recover(err);
        },
        (e: unknown) => {
          this.#inFlight--;
          this.#fail(wrapRedisError(e, this.#owner.key, `checking ${piecesText(piece)}`));
        },
      );
      return;
    }
    if (isRetryable(err, this.#owner.client)) {
      this.#recover(err);
      return;
    }
    this.#fail(wrapRedisError(err, this.#owner.key, `storing ${piecesText(piece)}`));
  }

  async #verifyStored(piece: PendingPiece): Promise<boolean> {
    const { client, chunksKey } = this.#owner;
    const found = (await client.send(chunksKey, ['XRANGE', chunksKey, piece.id, piece.id], true)) as RawEntry[];
    const stored = found[0]?.[1];
    return (
      stored?.length === 4 &&
      stored[0]!.toString() === Field.data &&
      stored[1]!.equals(piece.data) &&
      stored[2]!.toString() === Field.crc &&
      stored[3]!.toString() === piece.crc
    );
  }

  #ack(i: number): void {
    const piece = this.#pending.get(i);
    if (!piece || this.#stopped) return;
    piece.acked = true;
    const committed = this.#committedPieces;
    if (piece.sent) {
      this.#link.answered(piece.sent);
      this.#windowBytes = this.#sized();
    }
    for (
      let next = this.#pending.get(this.#committedPieces);
      next?.acked;
      next = this.#pending.get(this.#committedPieces)
    ) {
      this.#pending.delete(this.#committedPieces);
      this.#pendingBytes -= next.data.length;
      this.#committedPieces++;
      this.#committedBytes += next.data.length;
      this.#committedId = next.id;
      // Only a full chunk is where a resume may continue.
      if (next.chunk) {
        this.#wholeChunks = next.n + 1;
        this.#wholeBytes = this.#committedBytes;
        this.#wholeCrc = next.fileCrc;
        this.#owner.release?.(next.chunk);
      }
    }
    // Trouble is over once the file gets further, not when a piece beyond the one refused is
    // stored: a repair deletes that one again, and under lasting pressure (memory that holds a
    // few pieces, never the one the file waits for) a clock restarted by it never ran out.
    if (this.#committedPieces > committed) this.#troubleSince = 0;
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
    // Stopped (the stream is destroyed): nothing is sent again, and no timer may outlive it.
    if (this.#recovering || this.#stopped) return;
    this.#recovering = true;
    // A chunk still in flight may be acknowledged meanwhile (which clears the trouble mark if the
    // file gets further by it): the retry budget counts from here.
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
          const first = this.#pending.get(this.#committedPieces);
          this.#fail(
            wrapRedisError(
              cause,
              key,
              `storing ${first ? piecesText(first) : 'the next piece'} (gave up after ${retryTimeout} ms)`,
            ),
          );
          return;
        }
        // Every piece from the first one not acknowledged goes, and is sent again.
        const first = this.#pending.get(this.#committedPieces)!;
        run(
          client,
          REPAIR,
          { meta: keys.meta, chunks: chunksKey, events: keys.events },
          { writer, n: first.n, s: first.s, last: this.#committedId },
        ).then(
          (reply) => {
            if (this.#stopped) return;
            if (reply.status === 'gap') {
              this.#fail(
                corrupt(
                  key,
                  `pieces that Redis acknowledged are missing: the last stored entry is ${reply.top}, ${this.#committedId} was expected ` +
                    '(lost in a failover to a replica that had not got them, or in a restart from an older snapshot? `waitReplicas` prevents the first)',
                ),
              );
              return;
            }
            if (reply.status === 'lease') {
              this.#fail(aborted(key, 'the file was removed or taken over by another writer while being written'));
              return;
            }
            for (const [i, piece] of this.#pending) if (i >= this.#committedPieces) piece.acked = false;
            this.#nextToSend = this.#committedPieces;
            this.#recovering = false;
            this.#sendQueued();
          },
          (err: unknown) => {
            if (isRetryable(err, client)) attempt(nextDelay(delay));
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
