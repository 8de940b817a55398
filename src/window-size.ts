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

import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import type { RedisPort } from './redis/port.js';

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
  /** ms of the round trip of a request with a small reply, as probes measured it; Infinity when unknown. */
  latency: number;
  /** What the last probes measured, newest last (at most {@link PROBES_KEPT}). */
  readonly probes: number[];
  /** Bytes per ms delivered at best lately; 0 when unknown. */
  rate: number;
}

/**
 * ms of round trip that a window's floor covers (16 chunks written, or read ahead: 4 MiB over 2 ms is
 * faster than one connection carries), and that a busy machine adds on loopback (a probe waiting
 * for Redis to be scheduled): only the latency beyond it calls for more depth.
 */
const LOCAL_MS = 2;
/** How long a probe waits for a connecting client to be ready before it is given up. */
const PROBE_WAIT_MS = 10_000;
/** Probes kept per connection and direction: their median is the latency. */
const PROBES_KEPT = 3;
/** Rates are kept as the best of the current period and the one before it: 0.5 to 1 s of history. */
const RATE_PERIOD_MS = 500;

/**
 * @internal The latency and throughput of a link. The latency comes from probes (small requests
 * sent while nothing else is in flight: see {@link probeLink}), kept with the connection: the round
 * trip of a large request or of one queued behind others mixes the latency with transfer and
 * queueing, which more depth does not hide. The throughput comes from every answer.
 */
export class LinkEstimate {
  readonly #memory: LinkMemory;
  #delivered = 0;
  /** The best delivery rate of this period and of the one before, bytes per ms. */
  #rate = 0;
  #previousRate: number;
  #periodStart = performance.now();

  constructor(memory: LinkMemory) {
    this.#memory = memory;
    this.#previousRate = memory.rate;
  }

  /** A request of `bytes` goes out now. */
  sent(bytes: number): Sent {
    return { at: performance.now(), delivered: this.#delivered, bytes };
  }

  /** The request `sent` was answered now. */
  answered(sent: Sent): void {
    const now = performance.now();
    this.#delivered += sent.bytes;
    // The bytes delivered while this request was out, over the time it was out (BBR's delivery
    // rate sample): what the link carries at the depth in use, whatever the size of each request.
    // No request is out for less than the latency: answers taken in a burst, after the event loop
    // was busy, would otherwise count as delivered in no time.
    const latency = this.latency;
    const elapsed = Math.max(now - sent.at, latency === Infinity ? 0 : latency, 0.001);
    const rate = (this.#delivered - sent.delivered) / elapsed;
    if (now - this.#periodStart > RATE_PERIOD_MS) {
      this.#previousRate = this.#rate;
      this.#rate = 0;
      this.#periodStart = now;
    }
    if (rate > this.#rate) this.#rate = rate;
    this.#memory.rate = this.rate;
  }

  /** Bytes per ms delivered at best lately (0 until the first answer). */
  get rate(): number {
    return Math.max(this.#rate, this.#previousRate);
  }

  /** ms of a round trip that bytes in flight must cover; Infinity until probed. */
  get latency(): number {
    return this.#memory.latency;
  }

  /**
   * `gain` times the bytes the link holds in one round trip at the best rate, less the round trip
   * the floor covers; 0 while unknown.
   */
  product(gain: number): number {
    const latency = this.latency;
    return latency === Infinity ? 0 : gain * this.rate * Math.max(0, latency - LOCAL_MS);
  }
}

/**
 * @internal Measure the latency of `client`'s link with the small request `send` makes, sent now,
 * while nothing else is in flight on it for this stream (with the writer's claim, before the
 * reader's first batch). What counts is the time the event loop spent idle until the answer, not
 * the whole round trip: while the loop was busy an answer that had arrived could not be taken (on
 * loopback the round trip would measure the loop's own work, which a deeper window would not
 * hide); while it was idle the answer had not arrived.
 */
export function probeLink(client: RedisPort, direction: 'write' | 'read', send: () => Promise<unknown>): void {
  const memory = linkMemory(client, direction);
  const probe = (): void => {
    const start = performance.eventLoopUtilization();
    send().then(
      () => record(memory, start),
      () => {},
    );
  };
  const state = client.state();
  if (state === 'ready') {
    probe();
    return;
  }
  // A command sent before the connection is ready would time the connecting too. A client that is
  // connecting (created just before the stream, as a command-line tool does) is probed once it is
  // ready: the first requests of the stream wait for the connection then, so nothing of it is in
  // flight yet. The listener goes if the client is not ready soon.
  if (state !== 'connecting') return;
  const cancel = client.onceReady(() => {
    clearTimeout(timer);
    probe();
  });
  const timer = setTimeout(cancel, PROBE_WAIT_MS);
  timer.unref();
}

/**
 * @internal Time a small request of the stream's own that is going out now with nothing else of
 * the stream in flight (the reader's open of a large file, which carries no entries) as a probe
 * is timed: call the returned function once it is answered, with whether it counts (it was small
 * after all). On a client still connecting the request waits in the client's queue: the time
 * starts once the client is ready, or, with a client that answers queued requests before it says
 * it is ready (node-redis), when the request was made: the connecting is counted then, and the
 * estimate errs long (a deeper window, within its budget) until later probes correct it.
 */
export function timeAsProbe(client: RedisPort, direction: 'write' | 'read'): (counts: boolean) => void {
  const memory = linkMemory(client, direction);
  const made = performance.eventLoopUtilization();
  const state = client.state();
  if (state === 'ready') return (counts) => counts && record(memory, made);
  if (state !== 'connecting') return () => {};
  let ready: EventLoopUtilization | undefined;
  const cancel = client.onceReady(() => {
    ready = performance.eventLoopUtilization();
  });
  return (counts) => {
    cancel();
    if (!counts) return;
    // Said ready after the answer (in the same turn, with no wait between): timed from the request.
    record(memory, ready !== undefined && performance.eventLoopUtilization(ready).idle > 0 ? ready : made);
  };
}

/** A probe that started at `start` was answered now. */
function record(memory: LinkMemory, start: EventLoopUtilization): void {
  // One probe can be off either way: short, by as much as the loop was busy, or long, when
  // Redis itself was busy (another client's large command, a large file freed). The first is
  // taken alone (a stream that is the only one on its connection, as a command-line transfer is,
  // gets a window sized to the link), then the least of the first two, then the median of the
  // last three: one probe off does not move the windows for long.
  const { idle, active } = performance.eventLoopUtilization(start);
  // A probe during which the loop was busy longer than idle (a writer's first pieces sent behind
  // its claim, other streams' work, the process descheduled) measures mostly the loop: it counts
  // only when nothing better is known.
  if (memory.probes.length > 0 && active > Math.max(LOCAL_MS, idle)) return;
  memory.probes.push(idle);
  if (memory.probes.length > PROBES_KEPT) memory.probes.shift();
  const sorted = [...memory.probes].sort((a, b) => a - b);
  memory.latency = sorted.length === PROBES_KEPT ? sorted[1]! : sorted[0]!;
}

/** What was learned per connection, by direction. */
const links = new WeakMap<object, { write: LinkMemory; read: LinkMemory }>();

/** @internal What the streams on `client` learned of its link, writing or reading. */
export function linkMemory(client: object, direction: 'write' | 'read'): LinkMemory {
  let memory = links.get(client);
  if (!memory) {
    memory = {
      write: { latency: Infinity, rate: 0, probes: [] },
      read: { latency: Infinity, rate: 0, probes: [] },
    };
    links.set(client, memory);
  }
  return memory[direction];
}
