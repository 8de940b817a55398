/**
 * How much the streams keep in flight: an estimate of the link to Redis (its round trip and the
 * throughput it delivers) that sizes the writer's window and the reader's read-ahead to the
 * bandwidth-delay product, as TCP's BBR sizes its window.
 *
 * Depth is worth what it buys: across a network a window of a few MiB leaves the link idle most of
 * each round trip, while on loopback a deeper one only makes Redis hold replies it cannot send yet.
 * So the window follows the estimate: `gain × throughput × latency`, between the stream's floor
 * and its memory budget.
 * @internal
 * @module
 */

import { performance } from 'node:perf_hooks';

/** @internal What one request records when it is sent, for the estimate when it is answered. */
export interface Sent {
  /** When it was sent (performance.now(), ms). */
  readonly at: number;
  /** Bytes delivered before it was sent. */
  readonly delivered: number;
  /** Its own bytes. */
  readonly bytes: number;
}

/**
 * @internal What the streams on one connection learned of its link: the next stream starts from
 * it instead of from its floor (TCP keeps such metrics per destination too). Updated as the
 * streams go; several streams at once each write their own view.
 */
export interface LinkMemory {
  /** ms of the round trip that does not depend on the size of a request; Infinity when unknown. */
  latency: number;
  /** Bytes per ms delivered at best lately; 0 when unknown. */
  rate: number;
}

/** Rates are kept as the best of the current period and the one before it: 0.5 to 1 s of history. */
const RATE_PERIOD_MS = 500;

/** @internal The round trip and throughput of a link, from requests and their answers. */
export class LinkEstimate {
  readonly #memory: LinkMemory | undefined;
  #delivered = 0;
  /** The least round trip seen, and the bytes of that request (their transfer is part of it). */
  #minRtt = Infinity;
  #minRttBytes = 0;
  /** The best delivery rate of this period and of the one before, bytes per ms. */
  #rate = 0;
  #previousRate = 0;
  #periodStart = performance.now();

  constructor(memory?: LinkMemory) {
    this.#memory = memory;
    if (memory) {
      this.#minRtt = memory.latency;
      this.#previousRate = memory.rate;
    }
  }

  /** A request of `bytes` goes out now. */
  sent(bytes: number): Sent {
    return { at: performance.now(), delivered: this.#delivered, bytes };
  }

  /** The request `sent` was answered now. */
  answered(sent: Sent): void {
    const now = performance.now();
    this.#delivered += sent.bytes;
    const rtt = now - sent.at;
    if (rtt < this.#minRtt) {
      this.#minRtt = rtt;
      this.#minRttBytes = sent.bytes;
    }
    // The bytes delivered while this request was out, over the time it was out (BBR's delivery
    // rate sample): what the link carries at the depth in use, whatever the size of each request.
    const rate = (this.#delivered - sent.delivered) / Math.max(rtt, 0.001);
    if (now - this.#periodStart > RATE_PERIOD_MS) {
      this.#previousRate = this.#rate;
      this.#rate = 0;
      this.#periodStart = now;
    }
    if (rate > this.#rate) this.#rate = rate;
    if (this.#memory) {
      this.#memory.latency = this.latency;
      this.#memory.rate = this.rate;
    }
  }

  /** Bytes per ms delivered at best lately (0 until the first answer). */
  get rate(): number {
    return Math.max(this.#rate, this.#previousRate);
  }

  /**
   * ms of the round trip that bytes in flight must cover: the least round trip less the transfer
   * of that request's own bytes at the best rate (on loopback a 4 MiB reply takes ms to transfer,
   * which more depth does not hide). Infinity until the first answer.
   */
  get latency(): number {
    const rate = this.rate;
    if (this.#minRtt === Infinity || rate === 0) return this.#minRtt;
    return Math.max(0, this.#minRtt - this.#minRttBytes / rate);
  }

  /** `gain` times the bytes the link holds in one round trip at the best rate; 0 while unknown. */
  product(gain: number): number {
    const latency = this.latency;
    return latency === Infinity ? 0 : gain * this.rate * latency;
  }
}

/** What was learned per connection, by direction. */
const links = new WeakMap<object, { write: LinkMemory; read: LinkMemory }>();

/** @internal What the streams on `client` learned of its link, writing or reading. */
export function linkMemory(client: object, direction: 'write' | 'read'): LinkMemory {
  let memory = links.get(client);
  if (!memory) {
    memory = { write: { latency: Infinity, rate: 0 }, read: { latency: Infinity, rate: 0 } };
    links.set(client, memory);
  }
  return memory[direction];
}
