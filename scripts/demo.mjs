#!/usr/bin/env node
// The package's main job in one command (`npm run demo`):
//
//   1. generate one day of a web server's access log as a gzipped CSV (deterministic, seeded) and,
//      while generating it, compute the expected aggregate directly;
//   2. start several readers FIRST, each in a worker thread with its own Redis connection, as if on
//      separate machines: createRedisReadStream(..., { waitForCreate, decompress: true }) -> csv-parse
//      -> aggregation (per country: requests, bytes; per status class);
//   3. upload the .gz from disk with ONE writer: pipeline(fs.createReadStream, createRedisWriteStream).
//      The gzip is stored byte for byte (detected from its magic bytes); the readers follow the file
//      while it is being written, gunzip it and parse rows as the chunks arrive;
//   4. print sizes and speeds, check every reader's aggregate against the direct computation, and
//      remove the file, so that Redis is left as it was found.
//
// Usage: node scripts/demo.mjs [--size-mib N] [--readers N] [--key NAME] [--seed N]
//
// Without REDIS_URL it starts a private redis-server (free 127.0.0.1 port, temp dir, no persistence)
// and stops it at the end. With REDIS_URL it uses that server and removes only what it created.
// Exit code 0 when every reader matches, 1 otherwise (130 on Ctrl-C).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createGzip, gzipSync } from 'node:zlib';
import { parse } from 'csv-parse';
import { Redis } from 'ioredis';

const MiB = 1024 * 1024;
const DAY = '2026-11-30';
const GZIP_LEVEL = 4;
const WAIT_FOR_CREATE_MS = 30_000;
const COLUMNS = ['time', 'ip', 'country', 'method', 'path', 'status', 'bytes', 'ms'];

/** An error the demo expects and explains: printed as one line, without a stack trace. */
class DemoError extends Error {}

// The package, by its name: it resolves to dist/ through the package's own "exports". Imported on
// demand so that an unbuilt package gets a clear message instead of a stack trace.
let createRedisReadStream, createRedisWriteStream, ErrorCodes, RedisFileError, remove, stat;

async function loadPackage() {
  try {
    ({ createRedisReadStream, createRedisWriteStream, ErrorCodes, RedisFileError, remove, stat } = await import('redis-file-stream'));
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && /redis-file-stream|[\\/]dist[\\/]/.test(err.message)) {
      throw new DemoError('the package is not built (dist/ is missing): run `node scripts/build.mjs` first, or `npm run demo`, which does');
    }
    throw err;
  }
}

const isRedisFileError = (err) => RedisFileError !== undefined && err instanceof RedisFileError;

// ---------------------------------------------------------------------------------------------
// Command line

const USAGE = `usage: node scripts/demo.mjs [options]

  --size-mib N   target size of the gzipped log in MiB, approximate (default 40)
  --readers N    number of concurrent readers, 1 to 32 (default 4)
  --key NAME     Redis file key (default demo/access-${DAY}.csv.gz, plus a random suffix with REDIS_URL)
  --seed N       seed of the generated data (default 1)
  -h, --help     show this help

Uses the Redis server at REDIS_URL when set; otherwise starts a private redis-server.`;

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'size-mib': { type: 'string', default: '40' },
        readers: { type: 'string', default: '4' },
        key: { type: 'string' },
        seed: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new DemoError(`${err.message}\n${USAGE}`);
  }
  if (values.help) return { help: true };
  const sizeMiB = Number(values['size-mib']);
  if (!(Number.isFinite(sizeMiB) && sizeMiB >= 0.01 && sizeMiB <= 4096)) {
    throw new DemoError(`--size-mib must be a number from 0.01 to 4096, got ${JSON.stringify(values['size-mib'])}`);
  }
  const readers = Number(values.readers);
  if (!(Number.isInteger(readers) && readers >= 1 && readers <= 32)) {
    throw new DemoError(`--readers must be an integer from 1 to 32, got ${JSON.stringify(values.readers)}`);
  }
  const seed = Number(values.seed);
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) {
    throw new DemoError(`--seed must be an integer from 0 to 4294967295, got ${JSON.stringify(values.seed)}`);
  }
  if (values.key !== undefined && values.key.length === 0) throw new DemoError('--key must not be empty');
  return { help: false, sizeMiB, readers, seed, key: values.key };
}

// ---------------------------------------------------------------------------------------------
// Cleanup: everything the demo creates registers how to undo it here, and it is undone in reverse
// order on success, on failure and on Ctrl-C.

const cleanups = [];
let childToKill; // the private redis-server, killed synchronously if the process exits early
let tempDir;

/** Undo everything, in reverse order; returns false when a step failed (it is reported). */
async function runCleanups() {
  let ok = true;
  while (cleanups.length > 0) {
    const step = cleanups.pop();
    try {
      await step();
    } catch (err) {
      ok = false;
      console.error(`demo: cleanup failed: ${describeError(err)}`);
    }
  }
  return ok;
}

const interrupt = new AbortController();
let interrupted = false;

function installProcessHandlers() {
  // Output piped into a command that quit early (`| head`): stop the demo and clean up, quietly.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err) => {
      if (err.code !== 'EPIPE') throw err;
      interrupt.abort(new DemoError('the output was closed'));
    });
  }
  process.on('exit', () => {
    // Last resort (an exit that skipped the cleanups): never leave a server or temp files behind.
    if (childToKill && childToKill.exitCode === null && childToKill.signalCode === null) childToKill.kill('SIGKILL');
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (interrupted) {
        console.error('demo: interrupted again, exiting at once');
        process.exit(130);
      }
      interrupted = true;
      console.error(`\ndemo: ${signal} received, stopping and cleaning up`);
      interrupt.abort(new DemoError(`interrupted by ${signal}`));
    });
  }
}

function checkInterrupted() {
  if (interrupt.signal.aborted) throw interrupt.signal.reason;
}

// ---------------------------------------------------------------------------------------------
// A private redis-server

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** 'ready' once the server answers PING with PONG, else 'down'. */
function ping(port) {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let data = '';
    const finish = (state) => {
      socket.destroy();
      resolve(state);
    };
    socket.setTimeout(1000, () => finish('down'));
    socket.once('error', () => finish('down'));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) finish(data.startsWith('+PONG') ? 'ready' : 'down');
    });
  });
}

async function startPrivateRedis(dir) {
  let lastError;
  // Another process may take the free port between picking and binding it: retry with a new one.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--logfile', ''];
    let output = '';
    let exitInfo;
    // detached: a Ctrl-C in the terminal reaches only the demo, which then stops the server in order.
    const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const append = (chunk) => {
      output = (output + chunk.toString('utf8')).slice(-16_384);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    const exited = new Promise((resolve) => {
      child.once('error', (err) => {
        exitInfo = err.code === 'ENOENT' ? 'redis-server is not installed (run: bash scripts/ensure-redis.sh)' : err.message;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo ??= signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
    });
    childToKill = child;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null && exitInfo === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      childToKill = undefined;
    };
    for (let i = 0; i < 200 && exitInfo === undefined; i++) {
      if ((await ping(port)) === 'ready' && exitInfo === undefined) {
        cleanups.push(stop);
        return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop();
    if (exitInfo?.startsWith('redis-server is not installed')) throw new DemoError(exitInfo);
    lastError = new DemoError(
      `redis-server on 127.0.0.1:${port} did not come up (${exitInfo ?? 'no PONG after 10 s'})\n` +
        `--- redis-server output ---\n${output.trim() || '(none)'}`,
    );
    if (!/Address already in use/i.test(output)) break;
  }
  throw lastError;
}

// ---------------------------------------------------------------------------------------------
// Redis connections

const connections = [];

/** A new ioredis connection, ready; closed by the cleanups. */
async function connectRedis(url, name) {
  const client = new Redis(url, { lazyConnect: true, connectionName: name, maxRetriesPerRequest: 3 });
  // Errors reach the commands that failed; this keeps an 'error' event from crashing the demo.
  let lastError;
  client.on('error', (err) => (lastError = err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new DemoError(`cannot connect to Redis at ${redactUrl(url)}: ${(lastError ?? err).message}`);
  }
  connections.push(client);
  return client;
}

async function closeConnections() {
  await Promise.all(
    connections.splice(0).map(async (client) => {
      try {
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      } catch {
        client.disconnect();
      }
    }),
  );
}

function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(REDIS_URL)';
  }
}

// ---------------------------------------------------------------------------------------------
// The data: one day of an access log, deterministic

/** mulberry32: a small, fast, seeded PRNG giving floats in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A lookup table of 4096 slots for a weighted choice: one random number, one array read. */
function weighted(pairs) {
  const total = pairs.reduce((n, [, w]) => n + w, 0);
  const table = [];
  let acc = 0;
  for (const [value, w] of pairs) {
    acc += w;
    while (table.length < Math.round((acc / total) * 4096)) table.push(value);
  }
  return (r) => table[(r * 4096) | 0];
}

// country, weight, first octet of its IPv4 addresses
const COUNTRIES = [
  ['US', 260, 23], ['DE', 95, 46], ['GB', 70, 51], ['IN', 80, 49], ['BR', 55, 177], ['FR', 50, 90],
  ['JP', 45, 126], ['CA', 35, 99], ['NL', 30, 145], ['AU', 25, 1], ['ES', 25, 88], ['IT', 25, 79],
  ['PL', 20, 83], ['SE', 15, 81], ['KR', 20, 121], ['MX', 20, 187], ['SG', 15, 103], ['ZA', 10, 41],
  ['NG', 10, 105], ['AR', 10, 181], ['TR', 15, 78], ['ID', 20, 36], ['VN', 12, 113], ['UA', 10, 91],
];
const pickCountry = weighted(COUNTRIES.map((c, i) => [i, c[1]]));
const pickMethod = weighted([['GET', 800], ['POST', 120], ['HEAD', 30], ['PUT', 30], ['DELETE', 20]]);
// path template, weight, typical response size
const PATHS = [
  ['/', 60, 18_000], ['/index.html', 20, 18_000], ['/api/v1/items/{id}', 180, 2_400], ['/api/v1/items', 60, 24_000],
  ['/api/v1/users/{id}/orders', 50, 6_000], ['/api/v1/cart', 40, 1_200], ['/search', 60, 9_000],
  ['/static/app.{hash}.js', 90, 310_000], ['/static/styles.{hash}.css', 70, 48_000], ['/images/{id}.jpg', 200, 85_000],
  ['/images/thumbs/{id}.webp', 150, 9_500], ['/login', 15, 4_000], ['/health', 25, 20], ['/favicon.ico', 25, 1_150],
];
const pickPath = weighted(PATHS.map((p, i) => [i, p[1]]));
const pickStatus = weighted([
  [200, 8400], [304, 700], [301, 80], [302, 60], [404, 380], [400, 60], [401, 70], [403, 40], [429, 50],
  [500, 40], [502, 15], [503, 25], [504, 10],
]);
const HASHES = ['3f9a1c', '7be204', 'c41d88'];
const WORDS = ['shoes', 'laptop', 'coffee', 'garden', 'camera', 'books', 'lamp', 'tent', 'phone', 'desk'];

/**
 * Where each of `rows` requests falls in the day: more traffic in the afternoon than at night.
 * Returns a function from row number to milliseconds since midnight, increasing with the row.
 */
function dayClock(rows, rand) {
  // Cumulative traffic per minute, from a smooth daily curve (low around 04:00, high around 16:00).
  const cdf = new Float64Array(1441);
  for (let m = 0; m < 1440; m++) cdf[m + 1] = cdf[m] + 1 + 0.8 * Math.sin(((m - 600) / 1440) * 2 * Math.PI);
  const total = cdf[1440];
  let minute = 0;
  return (i) => {
    const target = ((i + rand()) / rows) * total;
    while (minute < 1439 && cdf[minute + 1] < target) minute++;
    const within = (target - cdf[minute]) / (cdf[minute + 1] - cdf[minute]);
    return Math.min(86_399_999, Math.floor((minute + within) * 60_000));
  };
}

/** A new, empty aggregate: the figures every reader computes, and the generator too. */
function newAggregate() {
  return { rows: 0, countries: new Map(), statusClasses: new Map() };
}

function addRow(agg, country, status, bytes) {
  agg.rows++;
  let c = agg.countries.get(country);
  if (c === undefined) {
    c = { requests: 0, bytes: 0 };
    agg.countries.set(country, c);
  }
  c.requests++;
  c.bytes += bytes;
  const cls = `${String(status)[0]}xx`;
  agg.statusClasses.set(cls, (agg.statusClasses.get(cls) ?? 0) + 1);
}

/**
 * Yields the CSV as Buffers of about 256 KiB: the header, then `rows` rows in time order (only the
 * first `limit` of them when given). Every row also goes into `agg`, the direct computation the
 * readers are checked against.
 */
function* accessLog(rows, seed, agg, limit = rows) {
  const rand = prng(seed);
  const clock = dayClock(rows, rand);
  const pad2 = (n) => (n < 10 ? `0${n}` : String(n));
  const pad3 = (n) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));
  let lines = [`${COLUMNS.join(',')}\n`];
  let size = 0;
  for (let i = 0; i < limit; i++) {
    const t = clock(i); // ms since midnight UTC; the same text as Date#toISOString
    const time = `${DAY}T${pad2((t / 3_600_000) | 0)}:${pad2(((t / 60_000) | 0) % 60)}:${pad2(((t / 1000) | 0) % 60)}.${pad3(t % 1000)}Z`;
    const [country, , octet] = COUNTRIES[pickCountry(rand())];
    const ip =
      rand() < 0.12
        ? `2001:db8:${((rand() * 0xffff) | 0).toString(16)}:${((rand() * 0xffff) | 0).toString(16)}::${((rand() * 0xfff) | 0).toString(16)}`
        : `${octet}.${(rand() * 256) | 0}.${(rand() * 256) | 0}.${1 + ((rand() * 254) | 0)}`;
    const method = pickMethod(rand());
    const [template, , typical] = PATHS[pickPath(rand())];
    let path = template;
    if (template.includes('{id}')) path = template.replace('{id}', String(1000 + ((rand() * rand() * 90_000) | 0)));
    else if (template.includes('{hash}')) path = template.replace('{hash}', HASHES[(rand() * HASHES.length) | 0]);
    else if (template === '/search') path = `/search?q=${WORDS[(rand() * WORDS.length) | 0]}&page=${1 + ((rand() * 5) | 0)}`;
    let status = pickStatus(rand());
    if (status === 200 && method === 'POST') status = 201;
    else if (status === 200 && method === 'DELETE') status = 204;
    const bytes =
      status === 304 || status === 204 || method === 'HEAD'
        ? 0
        : status >= 300
          ? 150 + ((rand() * 400) | 0)
          : Math.max(20, Math.round(typical * (0.4 + 1.2 * rand() * rand() + rand() * 0.3)));
    const u = rand();
    const ms = Math.round(2 + 40 * u + 1500 * u ** 12 + (template.startsWith('/api') ? 25 * rand() : 0));
    const line = `${time},${ip},${country},${method},${path},${status},${bytes},${ms}\n`;
    addRow(agg, country, status, bytes);
    lines.push(line);
    size += line.length;
    if (size >= 256 * 1024) {
      yield Buffer.from(lines.join(''), 'latin1');
      lines = [];
      size = 0;
    }
  }
  if (lines.length > 0) yield Buffer.from(lines.join(''), 'latin1');
}

/** How many rows make about `targetBytes` of gzip: measured on a sample, twice to settle the time spacing. */
function rowsForGzipSize(targetBytes, seed) {
  let rows = Math.max(1000, Math.round(targetBytes / 20));
  for (let pass = 0; pass < 2; pass++) {
    // The first rows of a log of `rows` rows: same spacing in time, same mix.
    const sampleRows = Math.min(rows, 50_000);
    const sample = Buffer.concat([...accessLog(rows, seed, newAggregate(), sampleRows)]);
    const perRow = gzipSync(sample, { level: GZIP_LEVEL }).length / sampleRows;
    rows = Math.max(100, Math.round(targetBytes / perRow));
  }
  return rows;
}

async function generate(file, sizeMiB, seed) {
  const rows = rowsForGzipSize(sizeMiB * MiB, seed);
  const expected = newAggregate();
  let rawBytes = 0;
  const started = performance.now();
  await pipeline(
    accessLog(rows, seed, expected),
    async function* count(source) {
      for await (const part of source) {
        rawBytes += part.length;
        yield part;
      }
    },
    createGzip({ level: GZIP_LEVEL }),
    createWriteStream(file),
    { signal: interrupt.signal },
  );
  return { rows, rawBytes, gzBytes: statSync(file).size, expected, seconds: (performance.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// The readers. Each runs in a worker thread of its own, with its own Redis connection: as on
// separate machines, no reader's csv parsing holds up another reader or the writer.

/** Serializable form of an aggregate, to cross the thread boundary. */
function packAggregate(agg) {
  return { rows: agg.rows, countries: [...agg.countries], statusClasses: [...agg.statusClasses] };
}

function unpackAggregate(packed) {
  return { rows: packed.rows, countries: new Map(packed.countries), statusClasses: new Map(packed.statusClasses) };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads. */
function clockMs() {
  return performance.timeOrigin + performance.now();
}

/** The body of a reader thread: Redis -> gunzip -> csv-parse -> aggregate; reports to the main thread. */
async function readerThread({ url, key, connectionName }) {
  const stop = new AbortController();
  parentPort.on('message', (message) => {
    if (message === 'stop') stop.abort(new DemoError('stopped by the demo'));
  });
  // Messages from the main thread alone must not keep the thread alive once its work is done.
  parentPort.unref();
  const client = new Redis(url, { lazyConnect: true, connectionName, maxRetriesPerRequest: 3 });
  client.on('error', () => {});
  try {
    await loadPackage();
    try {
      await client.connect();
    } catch (err) {
      throw new DemoError(`cannot connect to Redis: ${err.message}`);
    }
    const agg = newAggregate();
    let firstRowAt;
    const stream = createRedisReadStream(client, key, { waitForCreate: WAIT_FOR_CREATE_MS, decompress: true, signal: stop.signal });
    const parser = parse({ columns: true });
    const sink = new Writable({
      objectMode: true,
      highWaterMark: 1024,
      write(row, _encoding, callback) {
        firstRowAt ??= clockMs();
        addRow(agg, row.country, row.status, Number(row.bytes));
        callback();
      },
    });
    parentPort.postMessage({ type: 'ready' });
    await pipeline(stream, parser, sink);
    parentPort.postMessage({
      type: 'done',
      firstRowAt,
      endAt: clockMs(),
      storedBytes: stream.deliveredBytes,
      csvBytes: parser.info.bytes,
      agg: packAggregate(agg),
    });
  } catch (err) {
    parentPort.postMessage({ type: 'error', error: describeError(err) });
  } finally {
    try {
      if (client.status === 'ready') await client.quit();
      else client.disconnect();
    } catch {
      client.disconnect();
    }
  }
}

/** Start a reader thread; `ready` resolves once its stream is open (or it failed), `done` at its end. */
function startReader(index, url, key, connectionName) {
  const reader = { index, error: undefined, firstRowAt: undefined, endAt: undefined, storedBytes: 0, csvBytes: 0, agg: undefined };
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'reader', index, url, key, connectionName } });
  reader.worker = worker;
  let markReady;
  reader.ready = new Promise((resolve) => (markReady = resolve));
  reader.done = new Promise((resolve) => {
    worker.on('message', (message) => {
      if (message.type === 'ready') {
        markReady();
      } else if (message.type === 'done') {
        Object.assign(reader, message, { agg: unpackAggregate(message.agg) });
      } else if (message.type === 'error') {
        reader.error ??= message.error;
      }
    });
    worker.on('error', (err) => {
      reader.error ??= `reader thread crashed: ${err instanceof Error ? err.stack : String(err)}`;
    });
    worker.on('exit', (code) => {
      if (!reader.agg) reader.error ??= `reader thread exited with code ${code} before it was done`;
      markReady();
      resolve();
    });
  });
  return reader;
}

/**
 * Best effort: wait until the readers' connections (named `<tag>-reader-<n>`; each stream's blocking
 * connection inherits the name) are blocked in XREAD, waiting for the key to be created.
 */
async function waitForBlockedReaders(client, tag, count, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    checkInterrupted();
    let list;
    try {
      list = String(await client.client('LIST'));
    } catch {
      return false; // CLIENT LIST not allowed (ACL): just go on
    }
    const blocked = list.split('\n').filter((line) => line.includes(` name=${tag}-reader-`) && /\bflags=\S*b/.test(line));
    if (blocked.length >= count) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Checking and printing

function compare(expected, got) {
  if (got.rows !== expected.rows) return `${got.rows} rows, expected ${expected.rows}`;
  for (const [country, e] of expected.countries) {
    const g = got.countries.get(country);
    if (!g) return `country ${country} missing`;
    if (g.requests !== e.requests) return `${country}: ${g.requests} requests, expected ${e.requests}`;
    if (g.bytes !== e.bytes) return `${country}: ${g.bytes} bytes, expected ${e.bytes}`;
  }
  for (const country of got.countries.keys()) {
    if (!expected.countries.has(country)) return `unexpected country ${JSON.stringify(country)}`;
  }
  const classes = new Set([...expected.statusClasses.keys(), ...got.statusClasses.keys()]);
  for (const cls of classes) {
    const e = expected.statusClasses.get(cls) ?? 0;
    const g = got.statusClasses.get(cls) ?? 0;
    if (e !== g) return `status ${cls}: ${g} requests, expected ${e}`;
  }
  return undefined;
}

const int = (n) => n.toLocaleString('en-US');
const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;
const pct = (part, whole) => `${((100 * part) / whole).toFixed(1)}%`;

function sizeOf(bytes) {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return mib(bytes);
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function table(headers, rows, right) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `  ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}`.trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

function printAggregate(agg) {
  const countries = [...agg.countries.entries()].sort((a, b) => b[1].requests - a[1].requests);
  const top = countries.slice(0, 10);
  const totalBytes = countries.reduce((n, [, c]) => n + c.bytes, 0);
  console.log(`\ntop countries (of ${countries.length}), ${int(agg.rows)} requests, ${sizeOf(totalBytes)} served:`);
  console.log(
    table(
      ['#', 'country', 'requests', 'share', 'bytes served', 'avg bytes'],
      top.map(([country, c], i) => [
        String(i + 1), country, int(c.requests), pct(c.requests, agg.rows), sizeOf(c.bytes), int(Math.round(c.bytes / c.requests)),
      ]),
      [true, false, true, true, true, true],
    ),
  );
  const classes = [...agg.statusClasses.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  console.log(`status classes: ${classes.map(([cls, n]) => `${cls} ${int(n)} (${pct(n, agg.rows)})`).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  await loadPackage();

  tempDir = mkdtempSync(join(tmpdir(), 'redis-file-stream-demo-'));
  cleanups.push(() => {
    rmSync(tempDir, { recursive: true, force: true });
    tempDir = undefined;
  });

  // 1. The server.
  let url = process.env.REDIS_URL;
  let privatePid;
  if (url) {
    console.log(`demo: using the Redis server at REDIS_URL (${redactUrl(url)})`);
  } else {
    const redisDir = join(tempDir, 'redis');
    mkdirSync(redisDir);
    const server = await startPrivateRedis(redisDir);
    url = server.url;
    privatePid = server.pid;
    console.log(`demo: started a private redis-server on 127.0.0.1:${server.port} (temp dir, no persistence)`);
  }
  checkInterrupted();
  cleanups.push(closeConnections);
  const redis = await connectRedis(url, 'rfs-demo-writer');
  const serverInfo = await redis.info('server').catch(() => '');
  if (privatePid !== undefined && Number(/^process_id:(\d+)/m.exec(serverInfo)?.[1]) !== privatePid) {
    // Another process took the port between the PING and now: never write into someone else's server.
    throw new DemoError('the private redis-server lost its port to another process; run the demo again');
  }
  const version = /^redis_version:(\S+)/m.exec(serverInfo)?.[1];
  if (version) console.log(`demo: Redis ${version}`);

  // 2. The key: never touch a file the demo did not create.
  const key = opts.key ?? (process.env.REDIS_URL ? `demo/access-${DAY}.csv.gz#${randomBytes(4).toString('hex')}` : `demo/access-${DAY}.csv.gz`);
  const existing = await stat(redis, key).catch((err) => {
    if (isRedisFileError(err) && err.code === ErrorCodes.NOT_FOUND) return undefined;
    throw err;
  });
  if (existing) {
    throw new DemoError(
      `the key ${JSON.stringify(key)} already holds a ${existing.state} file (${int(existing.size)} bytes) on this server; ` +
        'the demo never touches a file it did not create: pick another --key',
    );
  }

  // 3. The data, and the expected aggregate computed directly while generating it.
  const file = join(tempDir, `access-${DAY}.csv.gz`);
  console.log(`demo: generating one day of access log (${DAY}, seed ${opts.seed}, gzip level ${GZIP_LEVEL}, target ~${opts.sizeMiB} MiB gzipped) ...`);
  const data = await generate(file, opts.sizeMiB, opts.seed);
  console.log(
    `demo: file ${file}\n` +
      `      gzip ${sizeOf(data.gzBytes)} (${int(data.gzBytes)} bytes), raw CSV ${sizeOf(data.rawBytes)} (${int(data.rawBytes)} bytes), ` +
      `${int(data.rows)} rows, ratio ${(data.rawBytes / data.gzBytes).toFixed(1)}:1, generated in ${data.seconds.toFixed(1)} s (not timed below)`,
  );
  checkInterrupted();

  // 4. The readers, first: each in its own thread with its own connection, as on separate
  //    machines, waiting for a key that does not exist yet.
  const tag = `rfs-demo-${randomBytes(3).toString('hex')}`;
  const readers = [];
  const stopReaders = async () => {
    for (const r of readers) r.worker.postMessage('stop');
    await Promise.all(readers.map((r) => r.done));
  };
  cleanups.push(async () => {
    await stopReaders();
    await Promise.all(readers.map((r) => r.worker.terminate()));
  });
  for (let i = 1; i <= opts.readers; i++) readers.push(startReader(i, url, key, `${tag}-reader-${i}`));
  await Promise.all(readers.map((r) => r.ready));
  checkInterrupted();
  const early = readers.find((r) => r.error);
  if (early) throw new DemoError(`reader ${early.index} failed to start: ${early.error}`);
  const blocked = await waitForBlockedReaders(redis, tag, opts.readers, 5000);
  console.log(
    `demo: ${opts.readers} reader${opts.readers === 1 ? '' : 's'} ${blocked ? 'blocked in XREAD, ' : ''}waiting for key ${JSON.stringify(key)} ` +
      `(a thread and a Redis connection each; waitForCreate ${WAIT_FOR_CREATE_MS / 1000} s, decompress, csv-parse; ${availableParallelism()} CPUs)`,
  );

  // 5. One writer: the .gz from disk into Redis, stored as is (gzip detected from the magic bytes).
  let created = false;
  cleanups.push(async () => {
    if (!created) return;
    await stopReaders();
    // remove() deletes every key of the file: the server is left as the demo found it.
    await remove(redis, key);
  });
  const writer = createRedisWriteStream(redis, key, {
    contentType: 'text/csv',
    metadata: { day: DAY, columns: COLUMNS.join(',') },
    signal: interrupt.signal,
  });
  created = true; // from here on the key may exist, and it is ours (it did not exist above)
  const writeStart = clockMs();
  try {
    await pipeline(createReadStream(file, { highWaterMark: MiB }), writer);
  } catch (err) {
    if (isRedisFileError(err) && err.code === ErrorCodes.EXISTS) created = false; // someone else's, just now
    throw err;
  }
  const writeSeconds = (clockMs() - writeStart) / 1000;
  const info = await stat(redis, key);
  console.log(
    `demo: writer stored ${sizeOf(info.size)} in ${writeSeconds.toFixed(2)} s = ${(data.gzBytes / MiB / writeSeconds).toFixed(1)} MiB/s ` +
      `(${info.state}, contentEncoding ${info.contentEncoding}, ${int(info.chunks)} chunk${info.chunks === 1 ? '' : 's'} of ${info.chunkSize / 1024} KiB, crc32 ${info.crc32})`,
  );

  // 6. The readers end at the writer's end record.
  await Promise.all(readers.map((r) => r.done));
  checkInterrupted();
  const failed = readers.filter((r) => r.error);
  if (failed.length > 0) {
    for (const r of failed) console.error(`demo: reader ${r.index} failed: ${r.error}`);
    throw new DemoError(`${failed.length} of ${readers.length} readers failed`);
  }
  console.log('\nreaders (times from the writer start; MiB/s = stored gzip bytes / time from the writer start to the reader end):');
  console.log(
    table(
      ['reader', 'first row', 'done', 'MiB/s', 'rows', 'raw CSV', 'CSV MiB/s'],
      readers.map((r) => {
        const seconds = (r.endAt - writeStart) / 1000;
        return [
          String(r.index),
          r.firstRowAt === undefined ? '-' : `${Math.max(0, Math.round(r.firstRowAt - writeStart))} ms`,
          `${seconds.toFixed(2)} s`,
          (r.storedBytes / MiB / seconds).toFixed(1),
          int(r.agg.rows),
          sizeOf(r.csvBytes),
          (r.csvBytes / MiB / seconds).toFixed(1),
        ];
      }),
      [true, true, true, true, true, true, true],
    ),
  );
  const firstRows = readers.map((r) => r.firstRowAt - writeStart);
  console.log(
    `  the writer finished at ${writeSeconds.toFixed(2)} s; ` +
      (Math.max(...firstRows) < writeSeconds * 1000
        ? 'every reader parsed its first rows while the file was still being written'
        : 'the file was written faster than the readers got their first rows'),
  );
  if (opts.readers + 1 > availableParallelism()) {
    console.log(
      `  ${opts.readers} reader threads gunzip and parse CSV on ${availableParallelism()} CPUs at once: csv-parse bounds the readers, ` +
        'and their CPU use slows the writer too',
    );
  }

  printAggregate(readers[0].agg);

  // 7. The check.
  let mismatches = 0;
  for (const r of readers) {
    const why =
      r.storedBytes !== data.gzBytes
        ? `read ${r.storedBytes} stored bytes, the file has ${data.gzBytes}`
        : r.csvBytes !== data.rawBytes
          ? `parsed ${r.csvBytes} CSV bytes, the file has ${data.rawBytes}`
          : compare(data.expected, r.agg);
    if (why) {
      mismatches++;
      console.error(`demo: reader ${r.index} does NOT match the direct computation: ${why}`);
    }
  }
  if (mismatches > 0) throw new DemoError(`${mismatches} of ${readers.length} readers do not match the direct computation`);
  console.log(`\ndemo: all ${readers.length} readers match the direct computation`);
  return 0;
}

function describeError(err) {
  if (isRedisFileError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

function isExpected(err) {
  return err instanceof DemoError || isRedisFileError(err) || err?.name === 'AbortError' || err?.code === 'ENOSPC';
}

async function run() {
  installProcessHandlers();
  let code;
  try {
    code = await main();
  } catch (err) {
    code = interrupted ? 130 : 1;
    if (interrupted) {
      console.error('demo: interrupted');
    } else if (isExpected(err)) {
      console.error(`demo: ${describeError(err)}`);
    } else {
      console.error('demo: unexpected error:');
      console.error(err);
    }
  }
  if (!(await runCleanups()) && code === 0) code = 1;
  if (code === 0) {
    console.log(
      process.env.REDIS_URL
        ? 'demo: removed the file; no key of the demo is left on the server'
        : 'demo: removed the file and stopped the private redis-server',
    );
  }
  process.exitCode = code;
  // Nothing should keep the process alive now; if something does, do not hang.
  setTimeout(() => process.exit(code), 3000).unref();
}

if (isMainThread) await run();
else if (workerData?.role === 'reader') await readerThread(workerData);
