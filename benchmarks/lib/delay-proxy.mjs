// A delaying TCP proxy, run as a process of its own (started by benchmarks/lib/latency-proxy.mjs
// with an IPC channel): it listens on 127.0.0.1, forwards every connection to one target, and
// holds every chunk that arrives, in either direction, for the one-way delay before passing it on,
// so that a request and its reply take one round trip more than they would without it. Nothing
// limits the bandwidth: a chunk is released at its arrival time + the delay, whatever came before.
//
// Order: every chunk, of every connection and direction, waits in one queue in order of arrival.
// The delay is the same for all, so that order is also the order they are due in: nothing is ever
// released before what arrived earlier. A change of the delay (calibration, between measurements)
// applies to the chunks that arrive after it.
//
// Timing: Node's timers have a resolution of 1 ms (a 0.5 ms setTimeout takes about 1.1 ms), too
// coarse for an RTT of 1 ms. A worker thread is the alarm clock instead: it sleeps in Atomics.wait,
// whose timeout is a fraction of a millisecond, until the head of the queue is due, then posts a
// message that wakes this thread (about 0.1 ms late, a constant the calibration absorbs).
//
// Request bursts: the client-to-server chunks that arrive after a quiet gap (longer than `gapMs`,
// on every connection together) start a new burst; a client that waits for a reply before sending
// the next request makes one burst per round trip, a pipeline of requests makes one. Exchanges
// count the same without a clock: client-to-server chunks that arrive first, or after the proxy
// has passed reply bytes on to a client (a client can only act on a reply once it has it).
//
// Usage: node delay-proxy.mjs <target host> <target port> [one-way delay ms] [gap ms]
// IPC: sends { type: 'listening', port } once listening; answers each request with its `id`:
//   { type: 'set', oneWayMs?, gapMs? }  the delay (and burst gap) for the chunks that arrive next
//   { type: 'mark' }                    start counting request bursts afresh
//   { type: 'count' }                   -> { bursts, exchanges, requestBytes, replyBytes, burstsAtMs } since the mark
//                                          (burstsAtMs: when each burst began, ms after the mark, first 100)
//   { type: 'stats' }                   -> connections, bytes each way, the longest queue

import { createConnection, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

const [targetHost = '127.0.0.1', targetPortArg, delayArg = '0', gapArg = '0'] = process.argv.slice(2);
const targetPort = Number(targetPortArg);
if (!Number.isInteger(targetPort) || targetPort <= 0) throw new Error(`delay-proxy: bad target port ${targetPortArg}`);

let oneWayMs = Number(delayArg);
let gapMs = Number(gapArg);
const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// The alarm clock: the due time in a shared Float64Array, as an epoch time (the two threads'
// performance.now() have different origins), and a sequence number that wakes the worker when the
// due time moves.

const shared = new SharedArrayBuffer(16);
const seq = new Int32Array(shared, 0, 1);
const clock = new Float64Array(shared, 8, 1); // due: an epoch time in ms, 0 = nothing due
const alarm = new Worker(
  `
  const { workerData, parentPort } = require('node:worker_threads');
  const { performance } = require('node:perf_hooks');
  const seq = new Int32Array(workerData, 0, 1);
  const clock = new Float64Array(workerData, 8, 1);
  const epoch = () => performance.timeOrigin + performance.now();
  for (;;) {
    const s = Atomics.load(seq, 0);
    const due = clock[0];
    if (due === 0) {
      Atomics.wait(seq, 0, s);
      continue;
    }
    const wait = due - epoch();
    if (wait > 0 && Atomics.wait(seq, 0, s, wait) !== 'timed-out') continue; // moved: look again
    if (Atomics.load(seq, 0) !== s) continue;
    clock[0] = 0;
    parentPort.postMessage(0);
  }
  `,
  { eval: true, workerData: shared },
);
alarm.unref();
alarm.on('error', (err) => {
  console.error(`delay-proxy: the alarm thread failed: ${err?.stack ?? err}`);
  process.exit(1);
});

/** Wake this thread at `at` (this thread's performance.now() time). */
function setAlarm(at) {
  clock[0] = performance.timeOrigin + at;
  Atomics.add(seq, 0, 1);
  Atomics.notify(seq, 0);
}

// ---------------------------------------------------------------------------------------------
// The queue: { at, socket, chunk } (chunk null: end the socket), released in order.

let queue = [];
let head = 0;
let alarmAt = 0; // when the alarm is set for, 0 = not set
let maxQueued = 0;
/** A chunk due within this much is released now: waking up again for it would only be later. */
const EARLY_MS = 0.02;

function enqueue(socket, chunk, toClient = false) {
  const at = now() + oneWayMs;
  queue.push({ at, socket, chunk, toClient });
  maxQueued = Math.max(maxQueued, queue.length - head);
  if (oneWayMs <= 0) release();
  else if (alarmAt === 0) {
    alarmAt = at;
    setAlarm(at);
  }
}

function release() {
  const t = now() + EARLY_MS;
  while (head < queue.length && queue[head].at <= t) {
    const { socket, chunk, toClient } = queue[head];
    queue[head++] = undefined;
    if (socket.destroyed) continue;
    if (chunk === null) socket.end();
    else {
      socket.write(chunk);
      if (toClient) replied = true;
    }
  }
  if (head === queue.length) {
    queue = [];
    head = 0;
    alarmAt = 0;
  } else {
    if (head > 4096) {
      queue = queue.slice(head);
      head = 0;
    }
    alarmAt = queue[head].at;
    setAlarm(alarmAt);
  }
}

alarm.on('message', release);

// ---------------------------------------------------------------------------------------------
// Connections and request bursts.

let connections = 0;
let bytesUp = 0;
let bytesDown = 0;
let lastRequestAt = -Infinity;
let bursts = 0;
let markedAt = 0;
let burstsAt = [];
let requestBytes = 0;
let replyBytes = 0;
let exchanges = 0;
/** Reply bytes reached a client since the last request chunk (true at the mark). */
let replied = true;

const server = createServer({ noDelay: true }, (client) => {
  connections++;
  const upstream = createConnection({ host: targetHost, port: targetPort, noDelay: true });
  client.setNoDelay(true);
  const fail = () => {
    client.destroy();
    upstream.destroy();
  };
  // A reset or an error drops the connection at once; an orderly end is passed on, delayed, below.
  client.on('error', fail);
  upstream.on('error', fail);
  client.on('close', (hadError) => hadError && fail());
  upstream.on('close', (hadError) => hadError && fail());
  client.on('data', (chunk) => {
    const t = now();
    if (t - lastRequestAt > gapMs && bursts++ < 100) burstsAt.push(Math.round((t - markedAt) * 1000) / 1000);
    lastRequestAt = t;
    if (replied) exchanges++;
    replied = false;
    bytesUp += chunk.length;
    requestBytes += chunk.length;
    enqueue(upstream, chunk);
  });
  upstream.on('data', (chunk) => {
    bytesDown += chunk.length;
    replyBytes += chunk.length;
    enqueue(client, chunk, true);
  });
  // A half close travels with the same delay, after the bytes sent before it.
  client.on('end', () => enqueue(upstream, null));
  upstream.on('end', () => enqueue(client, null));
});

server.on('error', (err) => {
  console.error(`delay-proxy: ${err?.stack ?? err}`);
  process.exit(1);
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: server.address().port });
});

process.on('message', (m) => {
  const reply = (fields) => process.send?.({ id: m.id, ...fields });
  switch (m?.type) {
    case 'set':
      if (typeof m.oneWayMs === 'number') oneWayMs = m.oneWayMs;
      if (typeof m.gapMs === 'number') gapMs = m.gapMs;
      return reply({ oneWayMs, gapMs });
    case 'mark':
      bursts = 0;
      burstsAt = [];
      markedAt = now();
      requestBytes = 0;
      replyBytes = 0;
      lastRequestAt = -Infinity;
      exchanges = 0;
      replied = true;
      return reply({});
    case 'count':
      return reply({ bursts, exchanges, requestBytes, replyBytes, burstsAtMs: burstsAt });
    case 'stats':
      return reply({ connections, bytesUp, bytesDown, maxQueued, queued: queue.length - head });
    default:
      return reply({ error: `unknown request ${JSON.stringify(m?.type)}` });
  }
});

// The parent is gone (or closed the channel): nothing is left to serve.
process.on('disconnect', () => process.exit(0));
