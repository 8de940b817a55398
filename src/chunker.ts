/**
 * The writer's chunker: written bytes into chunks of a fixed size, sent to the window as whole
 * chunks, or as pieces of a chunk when a flush comes before it is full.
 * @internal
 * @module
 */

import { Buffer } from 'node:buffer';
import type { ChunkWindow } from './chunk-window.js';

/**
 * @internal A chunk's buffer: its bytes (`data`, `chunkSize` long) inside `whole`, with room before
 * and after them in which the command that stores the chunk can be encoded (see
 * ./redis/resp.ts), so that the client sends the chunk without copying it.
 */
export interface ChunkBuffer {
  readonly whole: Buffer;
  readonly data: Buffer;
  /** Where `data` starts in `whole`. */
  readonly at: number;
  /**
   * How many times the buffer was released to be filled again: an encoding written into it is
   * current only while this is what it was then.
   */
  reuses: number;
}

/** @internal Room after a chunk's bytes: the end of its XADD (`\r\n`, the field `c` and an 8-digit CRC). */
export const TAIL_ROOM = 64;

/**
 * @internal Room before a chunk's bytes for the start of its XADD, for chunks in a stream whose
 * key is `chunksKeyBytes` long: the key, the piece id and the rest of the command, with margin. A
 * chunk whose command does not fit is sent as usual.
 */
export function headRoomFor(chunksKeyBytes: number): number {
  return 128 + chunksKeyBytes;
}

/** @internal A chunk buffer of `chunkSize` bytes with `headRoom` before them and TAIL_ROOM after. */
export function allocChunk(chunkSize: number, headRoom: number): ChunkBuffer {
  const whole = Buffer.allocUnsafe(headRoom + chunkSize + TAIL_ROOM);
  return { whole, data: whole.subarray(headRoom, headRoom + chunkSize), at: headRoom, reuses: 0 };
}

/** @internal */
export class Chunker {
  #chunkSize: number;
  readonly #maxSpares: number;
  readonly #headRoom: number;
  /** The chunk being filled, how much of it is filled, and how much of that was sent as pieces. */
  #chunk: ChunkBuffer;
  #filled = 0;
  #sent = 0;
  /**
   * Chunk buffers that Redis has stored for good, filled again instead of allocating new ones: a
   * fresh 256 KiB buffer per chunk costs page faults and garbage collections that show as CPU time.
   */
  readonly #spare: ChunkBuffer[] = [];
  /**
   * Written bytes not yet copied into chunks, because the window is full: kept as the caller's own
   * buffers (never copied whole), and taken a chunk at a time as the window makes room.
   */
  readonly #held: Buffer[] = [];
  #window: ChunkWindow | undefined;

  /** Called when a chunk fills and is sent whole: nothing waits to be sent any more. */
  readonly #onFull: () => void;

  /** @param headRoom - room before each chunk's bytes for the start of the command that stores it. */
  constructor(chunkSize: number, maxSpares: number, headRoom: number, onFull: () => void) {
    this.#chunkSize = chunkSize;
    this.#maxSpares = maxSpares;
    this.#headRoom = headRoom;
    this.#chunk = allocChunk(chunkSize, headRoom);
    this.#onFull = onFull;
  }

  /** Send to `window` from now on, in chunks of `chunkSize` (a resumed file keeps its own). */
  start(window: ChunkWindow, chunkSize: number): void {
    this.#window = window;
    if (chunkSize !== this.#chunkSize) {
      this.#chunkSize = chunkSize;
      this.#chunk = allocChunk(chunkSize, this.#headRoom);
    }
  }

  /** Whether the window can take another piece now. */
  hasRoom(): boolean {
    return this.#window?.hasRoom() ?? true;
  }

  /** Bytes waiting to be copied in, or in the chunk being filled and not sent yet. */
  get waiting(): boolean {
    return this.#held.length > 0 || this.#filled > this.#sent;
  }

  /** Written bytes wait for room in the window. */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /** Take `data` in: copied into chunks now as far as the window has room, the rest held. */
  hold(data: readonly Buffer[]): void {
    this.#held.push(...data);
    this.take();
  }

  /**
   * Copy held bytes into chunks while the window has room (or the chunk being filled is not full),
   * sending every full chunk. Returns whether every held byte is in.
   */
  take(): boolean {
    const size = this.#chunkSize;
    for (;;) {
      // A full chunk goes out only when the window has room: otherwise it waits, and so does the
      // rest of the input.
      if (this.#filled === size) {
        if (!this.hasRoom()) break;
        this.#sendFull();
      }
      if (this.#held.length === 0) break;
      const data = this.#held[0]!;
      const n = Math.min(size - this.#filled, data.length);
      data.copy(this.#chunk.data, this.#filled, 0, n);
      this.#filled += n;
      if (n === data.length) this.#held.shift();
      // A view of the rest: the caller's buffer is never copied whole.
      else this.#held[0] = data.subarray(n);
    }
    return this.#held.length === 0;
  }

  #sendFull(): void {
    // The rest of the chunk after what flushes sent: the whole chunk when nothing was.
    const { data } = this.#chunk;
    this.#window!.queue(this.#sent === 0 ? data : data.subarray(this.#sent), this.#chunk);
    this.#chunk = this.#spare.pop() ?? allocChunk(this.#chunkSize, this.#headRoom);
    this.#filled = this.#sent = 0;
    this.#onFull();
  }

  /**
   * Send the bytes of the chunk being filled that were not sent yet, as a piece of it (the whole
   * chunk when it is full, whatever room the window has: a flush or the end sends what waits).
   */
  sendPartial(): void {
    if (!this.#window || this.#filled === this.#sent) return;
    if (this.#filled === this.#chunkSize) {
      this.#sendFull();
      return;
    }
    this.#window.queue(this.#chunk.data.subarray(this.#sent, this.#filled));
    this.#sent = this.#filled;
  }

  /**
   * A chunk is stored for good: its buffer may be filled again. At most `maxSpares` are kept, so
   * that one large write does not leave a large free list behind.
   */
  release(chunk: ChunkBuffer): void {
    chunk.reuses++;
    // A resumed file may have changed the chunk size since: a buffer of the old size is dropped.
    if (this.#spare.length < this.#maxSpares && chunk.data.length === this.#chunkSize) this.#spare.push(chunk);
  }

  /** Drop what is held (the stream is destroyed). */
  clear(): void {
    this.#held.length = 0;
  }
}

/**
 * @internal Sends what waits once the oldest byte not yet sent is `interval` ms old (0: never):
 * `pending` says whether anything waits, `busy` defers the flush while the writer is held back (it
 * then fills whole chunks), `flush` sends.
 *
 * A bulk writer fills a chunk every few hundred microseconds: setting and clearing a timer for each
 * write costs more CPU than the rest of the write path. So one timer runs while bytes may wait; a
 * full chunk only marks that nothing waits, and the timer, when it fires, looks at how old the
 * oldest waiting byte is and waits again for the rest of the interval.
 */
export class FlushTimer {
  readonly #interval: number;
  readonly #pending: () => boolean;
  readonly #busy: () => boolean;
  readonly #flush: () => void;
  #timer: NodeJS.Timeout | undefined;
  /** When the oldest byte that waits was written (performance.now()); undefined while nothing waits. */
  #since: number | undefined;
  /** Stopped for good: a write still held when the stream was destroyed arms nothing any more. */
  #stopped = false;

  constructor(interval: number, hooks: { pending: () => boolean; busy: () => boolean; flush: () => void }) {
    this.#interval = interval;
    this.#pending = hooks.pending;
    this.#busy = hooks.busy;
    this.#flush = hooks.flush;
  }

  /** Bytes were written: the interval starts now, unless older bytes wait already. */
  arm(): void {
    if (this.#interval === 0 || this.#stopped || this.#since !== undefined || !this.#pending()) return;
    this.#since = performance.now();
    this.#timer ??= setTimeout(this.#fire, this.#interval);
  }

  /** Nothing waits any more (a flush, a full chunk): the interval starts again with new bytes. */
  cancel(): void {
    this.#since = undefined;
  }

  /** The stream ends or is destroyed: no timer may outlive it. */
  stop(): void {
    this.#stopped = true;
    this.#since = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    if (this.#since === undefined) return;
    const age = performance.now() - this.#since;
    if (age < this.#interval) {
      this.#timer = setTimeout(this.#fire, Math.ceil(this.#interval - age));
    } else if (this.#busy()) {
      this.#timer = setTimeout(this.#fire, this.#interval);
    } else {
      this.#since = undefined;
      if (this.#pending()) this.#flush();
    }
  };
}
