/**
 * Progress events: how far a stream has come, at a modest rate.
 * @module
 */

/** The payload of a stream's `progress` event. */
export interface Progress {
  /** Bytes so far: acknowledged by Redis (writer) or delivered (reader, before decompression). */
  readonly bytes: number;
  /** The file's stored size when known (a reader of a complete file), else `undefined`. */
  readonly total: number | undefined;
}

/**
 * Emits at most one event per interval, checked when something happens rather than with a timer:
 * a fast transfer does not emit per chunk, and an idle one costs nothing.
 * @internal
 */
export class ProgressTicker {
  #last = 0;
  constructor(
    private readonly interval: number,
    private readonly emit: (progress: Progress) => void,
  ) {}

  /** Report `bytes`; `final` always emits (the last word of a finished transfer). */
  tick(bytes: number, total: number | undefined, final = false): void {
    const now = Date.now();
    if (!final && now - this.#last < this.interval) return;
    this.#last = now;
    this.emit({ bytes, total });
  }
}
