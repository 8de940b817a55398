/**
 * How far the application has consumed a read stream, counted in stored chunks: what a consumer
 * reports as its position, so that under a memory limit only chunks the application has taken out
 * of the stream are trimmed, never chunks merely fetched and still buffered. A consumer restarted
 * after a crash can then go on from its position (see the `JOIN` script).
 * @internal
 * @module
 */

/** A stored chunk went into the decompressor, and how many decoded bytes it had produced by then. */
interface Mark {
  /** Chunks written to the decompressor, this one included. */
  readonly chunks: number;
  /** Decoded bytes the decompressor had produced once it had taken all of them. */
  readonly decoded: number;
}

/** @internal */
export class ConsumedChunks {
  readonly #chunkSize: number;
  /** Offset in the file of the first byte the stream delivers. */
  readonly #start: number;
  readonly #decoding: boolean;
  /** Bytes pushed into the Readable (decoded bytes when decoding: all the decompressor emitted). */
  #pushed = 0;
  #marks: Mark[] = [];
  #decodedChunks: number;

  /**
   * @param chunkSize - the file's chunk size
   * @param start - offset of the first byte the stream delivers: a chunk boundary when decoding
   * @param decoding - whether the pushed bytes come out of a decompressor
   */
  constructor(chunkSize: number, start: number, decoding: boolean) {
    this.#chunkSize = chunkSize;
    this.#start = start;
    this.#decoding = decoding;
    this.#decodedChunks = Math.floor(start / chunkSize);
  }

  /** `bytes` were pushed into the Readable. */
  pushed(bytes: number): void {
    this.#pushed += bytes;
  }

  /**
   * The decompressor has taken every stored byte of chunks up to `chunks` (exclusive); it holds
   * `held` decoded bytes not emitted yet. Everything those chunks decode to (but the bits of a
   * code that spans into the next chunk) has been produced by now.
   */
  decoded(chunks: number, held: number): void {
    this.#marks.push({ chunks, decoded: this.#pushed + held });
  }

  /**
   * Chunks the application has consumed entirely, given what the Readable still buffers.
   * @param buffered - the Readable's `readableLength`
   * @param encoding - the Readable's `readableEncoding`: with one set, `readableLength` counts
   *   characters, and a character is at most 3 bytes in every encoding Node knows (4 more may wait
   *   in its decoder), so the count stays on the safe side
   */
  chunks(buffered: number, encoding: BufferEncoding | null): number {
    const held = encoding === null ? buffered : 3 * buffered + 4;
    const consumed = Math.max(0, this.#pushed - held);
    if (!this.#decoding) return Math.floor((this.#start + consumed) / this.#chunkSize);
    let i = 0;
    while (i < this.#marks.length && this.#marks[i]!.decoded <= consumed) i++;
    if (i > 0) {
      this.#decodedChunks = this.#marks[i - 1]!.chunks;
      this.#marks = this.#marks.slice(i);
    }
    return this.#decodedChunks;
  }
}
