#!/usr/bin/env node
// The package's main job in one command (`npm run demo`): one machine has a directory of logs, many
// machines each need every file, start processing before the upload ends, and Redis is clean once
// they are all done, without running out of memory.
//
//   1. The sender's log directory: 4 days of a web server's access log as CSV files, the oldest one
//      rotated and gzipped (access-2026-11-27.csv.gz, access-2026-11-28.csv, …), generated
//      deterministically (seeded) into a temp dir. The expected aggregate is computed directly
//      while generating.
//   2. The receivers FIRST: each a process of its own (this script, forked with `--role receiver`)
//      with its own Redis connection, standing for a machine:
//        for await (const file of receiveFiles(redis, channel, { consumer: 'receiver-<i>', decompress: true })) {
//          await pipeline(file.stream, csvParse({ columns: true }), aggregate);   // per day and country
//          await file.ack();
//        }
//   3. The sender: sendFiles(redis, channel, paths, { consumers: N, maxRedisMemory, ttl: 3600 }), then
//      closeChannel. maxRedisMemory is Redis's used_memory at the start plus 1.6 times the largest
//      file (at least 4 MiB): at the default size less than all files together, so that the sender
//      is held back until the receivers acknowledge files. The demo samples used_memory every 20 ms
//      to report the peak, and whether the sender's memory guard was waiting.
//   4. Every receiver's results are checked against the direct computation; every file must have
//      been deleted by its last acknowledgement; the channel is removed (removeChannel), and SCAN
//      must find no key of the demo (on a private server: DBSIZE 0).
//
// Usage: node scripts/demo.mjs [--size-mib N] [--receivers N] [--channel NAME] [--seed N] [--kill-receiver N]
//
// Without REDIS_URL it starts a private redis-server (free 127.0.0.1 port, temp dir, no persistence)
// and stops it at the end. With REDIS_URL it uses that server and removes only what it created.
// Exit code 0 when every receiver matches and Redis is left clean, 1 otherwise (130 on Ctrl-C).

import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import { parse } from 'csv-parse';
import { Redis } from 'ioredis';

const MiB = 1024 * 1024;
const SCRIPT = fileURLToPath(import.meta.url);
/** The sender's log directory: one file per day, the oldest rotated and gzipped. */
const DAYS = [
  { day: '2026-11-27', weekday: 'Fri', traffic: 1.3, gzip: true, note: 'Black Friday; rotated and gzipped' },
  { day: '2026-11-28', weekday: 'Sat', traffic: 0.85, gzip: false, note: '' },
  { day: '2026-11-29', weekday: 'Sun', traffic: 0.8, gzip: false, note: '' },
  { day: '2026-11-30', weekday: 'Mon', traffic: 1.1, gzip: false, note: 'Cyber Monday, today' },
];
const GZIP_LEVEL = 4;
const COLUMNS = ['time', 'ip', 'country', 'method', 'path', 'status', 'bytes', 'ms'];
/** The package's default key prefix: every key the demo creates starts with it. */
const PREFIX = 'rfs:';
const TTL_SECONDS = 3600;
/** maxRedisMemory = used_memory at the start + this many times the largest file (at least MIN_HEADROOM). */
const HEADROOM_FACTOR = 1.6;
const MIN_HEADROOM = 4 * MiB;
const SAMPLE_MS = 20;
/** Without any progress of the receivers for this long, the run is stuck: fail instead of hanging. */
const STALL_MS = 60_000;
/** How long receivers get to stop after being told to, before they are killed. */
const STOP_MS = 5000;
const READY_MS = 30_000;

/** An error the demo expects and explains: printed as one line, without a stack trace. */
class DemoError extends Error {}

// The package, by its name: it resolves to dist/ through the package's own "exports". Imported on
// demand so that an unbuilt package gets a clear message instead of a stack trace.
let closeChannel, receiveFiles, RedisFileError, remove, list, removeChannel, sendFiles;

async function loadPackage() {
  try {
    ({ closeChannel, receiveFiles, RedisFileError, remove, list, removeChannel, sendFiles } = await import('redis-file-stream'));
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

  --size-mib N         total size of the log files, as sent and stored, in MiB, approximate (default 24)
  --receivers N        number of receiver processes, 1 to 32 (default 4); --readers is an alias
  --channel NAME       channel name (default demo-logs, plus a random suffix with REDIS_URL)
  --seed N             seed of the generated data (default 1)
  --kill-receiver N    crash drill: SIGKILL receiver N in the middle of its second file, then start it
                       again under the same consumer name (it resumes at that file)
  -h, --help           show this help

Uses the Redis server at REDIS_URL when set; otherwise starts a private redis-server.`;

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'size-mib': { type: 'string', default: '24' },
        receivers: { type: 'string' },
        readers: { type: 'string' },
        channel: { type: 'string' },
        seed: { type: 'string', default: '1' },
        'kill-receiver': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new DemoError(`${err.message.split('\n')[0]} (see --help)`);
  }
  if (values.help) return { help: true };
  const sizeMiB = Number(values['size-mib']);
  if (!(Number.isFinite(sizeMiB) && sizeMiB >= 0.01 && sizeMiB <= 4096)) {
    throw new DemoError(`--size-mib must be a number from 0.01 to 4096, got ${JSON.stringify(values['size-mib'])}`);
  }
  if (values.receivers !== undefined && values.readers !== undefined && values.receivers !== values.readers) {
    throw new DemoError('--readers is an alias of --receivers: give one of them');
  }
  const flag = values.receivers === undefined && values.readers !== undefined ? 'readers' : 'receivers';
  const receiversText = values.receivers ?? values.readers ?? '4';
  const receivers = Number(receiversText);
  if (!(/^\d+$/.test(receiversText) && receivers >= 1 && receivers <= 32)) {
    throw new DemoError(`--${flag} must be an integer from 1 to 32, got ${JSON.stringify(receiversText)}`);
  }
  const seed = Number(values.seed);
  if (!(/^\d+$/.test(values.seed) && seed <= 0xffffffff)) {
    throw new DemoError(`--seed must be an integer from 0 to 4294967295, got ${JSON.stringify(values.seed)}`);
  }
  if (values.channel !== undefined && values.channel.length === 0) throw new DemoError('--channel must not be empty');
  let killReceiver;
  if (values['kill-receiver'] !== undefined) {
    killReceiver = Number(values['kill-receiver']);
    if (!(/^\d+$/.test(values['kill-receiver']) && killReceiver >= 1 && killReceiver <= receivers)) {
      throw new DemoError(`--kill-receiver must be a receiver's number, from 1 to ${receivers}, got ${JSON.stringify(values['kill-receiver'])}`);
    }
  }
  return { help: false, sizeMiB, receivers, seed, channel: values.channel, killReceiver };
}

// ---------------------------------------------------------------------------------------------
// Cleanup: everything the demo creates registers how to undo it here, and it is undone in reverse
// order on success, on failure and on Ctrl-C.

const cleanups = [];
let redisServerProcess; // the private redis-server, killed synchronously if the process exits early
const liveChildren = new Set(); // receiver processes, likewise
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

/** Aborted on Ctrl-C (SIGINT), SIGTERM, a closed output, or the first failure of the run. */
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
    // Last resort (an exit that skipped the cleanups): never leave a process or temp files behind.
    for (const child of liveChildren) child.kill('SIGKILL');
    const server = redisServerProcess;
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (interrupted) {
        console.error('demo: interrupted again, exiting at once');
        process.exit(130);
      }
      interrupted = true;
      console.error(`\ndemo: ${signal} received, stopping the receivers and cleaning up`);
      interrupt.abort(new DemoError(`interrupted by ${signal}`));
    });
  }
}

function checkInterrupted() {
  if (interrupt.signal.aborted) throw interrupt.signal.reason;
}

/** Resolves with `promise`, or rejects as soon as the run is interrupted or failed. */
function unlessInterrupted(promise) {
  if (interrupt.signal.aborted) return Promise.reject(interrupt.signal.reason);
  let onAbort;
  const aborted = new Promise((_, reject) => {
    onAbort = () => reject(interrupt.signal.reason);
    interrupt.signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => interrupt.signal.removeEventListener('abort', onAbort));
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
    redisServerProcess = child;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null && exitInfo === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      redisServerProcess = undefined;
    };
    for (let i = 0; i < 200 && exitInfo === undefined; i++) {
      if ((await ping(port)) === 'ready' && exitInfo === undefined) {
        cleanups.push(stop);
        return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid };
      }
      await sleep(50);
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
// Redis connections and keys

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

async function usedMemory(client) {
  return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))?.[1] ?? Number.NaN);
}

/** A Redis glob matching exactly `text`. */
const globEscape = (text) => text.replace(/[*?[\]\\]/g, '\\$&');

/**
 * SCAN patterns of every key of a channel under the default prefix (docs/format.md): its log
 * `rfs:channel:{<name>}:log`, and the keys `rfs:{<name>/<upload>/<file>}:…` of the files sent on it.
 * In key names `%`, `{` and `}` are percent-encoded.
 */
function channelKeyPatterns(channel) {
  const name = globEscape(channel.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D')));
  return { log: `${PREFIX}channel:{${name}}:*`, files: `${PREFIX}{${name}/*` };
}

async function scanKeys(client, pattern) {
  const found = new Set();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) found.add(key);
  } while (cursor !== '0');
  return [...found].sort();
}

// ---------------------------------------------------------------------------------------------
// The data: four days of an access log, deterministic

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

/**
 * A new, empty aggregate: what every receiver computes, and the generator too. Rows, and per day
 * (taken from each row's time) and country: requests and bytes served.
 */
function newAggregate() {
  return { rows: 0, days: new Map() };
}

function addRow(agg, day, country, bytes) {
  agg.rows++;
  let countries = agg.days.get(day);
  if (countries === undefined) {
    countries = new Map();
    agg.days.set(day, countries);
  }
  let c = countries.get(country);
  if (c === undefined) {
    c = { requests: 0, bytes: 0 };
    countries.set(country, c);
  }
  c.requests++;
  c.bytes += bytes;
}

/** `into` += `agg`. */
function mergeAggregate(into, agg) {
  into.rows += agg.rows;
  for (const [day, countries] of agg.days) {
    for (const [country, c] of countries) {
      let t = into.days.get(day);
      if (t === undefined) into.days.set(day, (t = new Map()));
      const s = t.get(country) ?? { requests: 0, bytes: 0 };
      s.requests += c.requests;
      s.bytes += c.bytes;
      t.set(country, s);
    }
  }
  return into;
}

/** Why `got` differs from `expected`, or undefined when they are equal. */
function compareAggregates(expected, got) {
  if (got.rows !== expected.rows) return `${got.rows} rows, expected ${expected.rows}`;
  const days = new Set([...expected.days.keys(), ...got.days.keys()]);
  for (const day of days) {
    const e = expected.days.get(day) ?? new Map();
    const g = got.days.get(day) ?? new Map();
    for (const country of new Set([...e.keys(), ...g.keys()])) {
      const ec = e.get(country) ?? { requests: 0, bytes: 0 };
      const gc = g.get(country) ?? { requests: 0, bytes: 0 };
      if (gc.requests !== ec.requests) return `${day} ${country}: ${gc.requests} requests, expected ${ec.requests}`;
      if (gc.bytes !== ec.bytes) return `${day} ${country}: ${gc.bytes} bytes, expected ${ec.bytes}`;
    }
  }
  return undefined;
}

/**
 * Yields one day's CSV as Buffers of about 256 KiB: the header, then `rows` rows in time order
 * (only the first `limit` of them when given). Every row also goes into `agg`, the direct
 * computation the receivers are checked against.
 */
function* accessLog(day, rows, seed, agg, limit = rows) {
  const rand = prng(seed);
  const clock = dayClock(rows, rand);
  const pad2 = (n) => (n < 10 ? `0${n}` : String(n));
  const pad3 = (n) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));
  let lines = [`${COLUMNS.join(',')}\n`];
  let size = 0;
  for (let i = 0; i < limit; i++) {
    const t = clock(i); // ms since midnight UTC; the same text as Date#toISOString
    const time = `${day}T${pad2((t / 3_600_000) | 0)}:${pad2(((t / 60_000) | 0) % 60)}:${pad2(((t / 1000) | 0) % 60)}.${pad3(t % 1000)}Z`;
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
    addRow(agg, day, country, bytes);
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

/** Each day's generator seed, from the demo's seed. */
const daySeed = (seed, i) => (seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0;

/**
 * Rows per day such that the files, as stored (CSV, and the gzipped one compressed), total about
 * `targetBytes`: bytes per row measured on a sample, twice to settle the time spacing.
 */
function rowsPerDay(targetBytes, seed) {
  const weight = DAYS.reduce((n, d) => n + d.traffic, 0);
  let rows = Math.max(1000, Math.round(targetBytes / 60 / weight)); // rows of a day of traffic 1
  for (let pass = 0; pass < 2; pass++) {
    const sampleRows = Math.min(rows, 50_000);
    const sample = Buffer.concat([...accessLog(DAYS[0].day, rows, daySeed(seed, 0), newAggregate(), sampleRows)]);
    const csvPerRow = sample.length / sampleRows;
    const gzPerRow = gzipSync(sample, { level: GZIP_LEVEL }).length / sampleRows;
    const bytesPerUnit = DAYS.reduce((n, d) => n + d.traffic * (d.gzip ? gzPerRow : csvPerRow), 0);
    rows = Math.max(50, targetBytes / bytesPerUnit);
  }
  return DAYS.map((d) => Math.max(50, Math.round(rows * d.traffic)));
}

/** Write the log directory; each file with its sizes and its expected aggregate. */
async function generate(dir, sizeMiB, seed) {
  const started = performance.now();
  const counts = rowsPerDay(sizeMiB * MiB, seed);
  const files = [];
  for (const [i, d] of DAYS.entries()) {
    const name = `access-${d.day}.csv${d.gzip ? '.gz' : ''}`;
    const path = join(dir, name);
    const expected = newAggregate();
    let rawBytes = 0;
    await pipeline(
      accessLog(d.day, counts[i], daySeed(seed, i), expected),
      async function* count(source) {
        for await (const part of source) {
          rawBytes += part.length;
          yield part;
        }
      },
      ...(d.gzip ? [createGzip({ level: GZIP_LEVEL })] : []),
      createWriteStream(path),
      { signal: interrupt.signal },
    );
    files.push({ ...d, name, path, rows: counts[i], rawBytes, size: statSync(path).size, expected });
  }
  return { files, seconds: (performance.now() - started) / 1000 };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
function clockMs() {
  return performance.timeOrigin + performance.now();
}

// ---------------------------------------------------------------------------------------------
// A receiver: a process of its own (`--role receiver`), standing for a machine. It gets its
// settings from the demo over IPC, and reports there: each file's results before it acknowledges
// the file (so that a receiver killed in between reports that file again, and it counts once).

async function receiverProcess() {
  const stop = new AbortController();
  const send = (message) =>
    new Promise((resolve) => {
      if (!process.connected) return resolve();
      process.send(message, () => resolve());
    });
  // Ctrl-C belongs to the demo, which stops its receivers in order.
  process.on('SIGINT', () => {});
  // The demo went away (even killed): stop, and do not linger.
  process.on('disconnect', () => {
    stop.abort(new DemoError('the demo went away'));
    setTimeout(() => process.exit(1), 2000).unref();
  });
  const config = await new Promise((resolve) => process.once('message', resolve));
  process.on('message', (message) => {
    if (message?.type === 'stop') stop.abort(new DemoError('stopped by the demo'));
  });
  const { url, channel, consumer, connectionName, pauseInFile } = config;
  const client = new Redis(url, { lazyConnect: true, connectionName, maxRetriesPerRequest: 3 });
  client.on('error', () => {});
  try {
    await loadPackage();
    try {
      await client.connect();
    } catch (err) {
      throw new DemoError(`cannot connect to Redis: ${err.message}`);
    }
    await send({ type: 'ready' });
    let ordinal = 0;
    let firstRow = true;
    let progressAt = 0;
    for await (const file of receiveFiles(client, channel, { consumer, decompress: true, signal: stop.signal })) {
      ordinal++;
      const agg = newAggregate();
      const parser = parse({ columns: true });
      const sink = new Writable({
        objectMode: true,
        highWaterMark: 1024,
        write(row, _encoding, callback) {
          if (firstRow) {
            firstRow = false;
            send({ type: 'first-row', at: clockMs() });
          }
          addRow(agg, row.time.slice(0, 10), row.country, Number(row.bytes));
          if ((agg.rows & 1023) === 0 && Date.now() - progressAt >= 250) {
            progressAt = Date.now();
            send({ type: 'progress' });
          }
          if (ordinal === pauseInFile && agg.rows === 1) {
            // The crash drill: stop in the middle of this file and wait to be killed.
            send({ type: 'paused', name: file.name });
            return;
          }
          callback();
        },
      });
      await pipeline(file.stream, parser, sink);
      await send({
        type: 'file',
        key: file.key,
        name: file.name,
        storedBytes: file.stream.deliveredBytes,
        offset: file.offset,
        csvBytes: parser.info.bytes,
        agg,
      });
      await file.ack();
    }
    await send({ type: 'done', at: clockMs() });
  } catch (err) {
    if (!stop.signal.aborted) {
      process.exitCode = 1;
      await send({ type: 'error', error: describeError(err) });
    }
  } finally {
    try {
      if (client.status === 'ready') await client.quit();
      else client.disconnect();
    } catch {
      client.disconnect();
    }
    if (process.connected) process.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The demo's side of the receivers

/**
 * The run's first failure: rejects `failure`, which every wait of the run races against, and
 * aborts the sender (which the memory limit would otherwise hold back forever).
 */
let failRun;
const failure = new Promise((_, reject) => {
  failRun = (err) => {
    reject(err);
    if (!interrupt.signal.aborted) interrupt.abort(err);
  };
});
failure.catch(() => {});
let lastProgress = Date.now();

/** One receiver: its results survive its processes (a restart reports its files again). */
function newReceiver(index, channel, url, tag) {
  return {
    index,
    consumer: `receiver-${index}`,
    channel,
    url,
    connectionName: `${tag}-receiver-${index}`,
    proc: undefined,
    files: new Map(), // file key -> the results of its last complete processing
    firstRowAt: undefined,
    doneAt: undefined,
    restarts: 0,
    stopping: false,
  };
}

/** Start (or restart) the receiver's process; resolves once it is connected. */
function launch(receiver, { pauseInFile } = {}) {
  const child = fork(SCRIPT, ['--role', 'receiver'], {
    // detached: a Ctrl-C in the terminal reaches only the demo, which stops the receivers in order.
    detached: true,
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  liveChildren.add(child);
  const proc = { child, stderr: '', done: false, expectKill: false, received: [], offsets: [] };
  receiver.proc = proc;
  child.stderr.on('data', (chunk) => {
    proc.stderr = (proc.stderr + chunk.toString('utf8')).slice(-4096);
  });
  let markReady;
  proc.ready = new Promise((resolve) => (markReady = resolve));
  // Messages sent before the child's end arrive before its IPC channel closes: wait for both.
  const disconnected = new Promise((resolve) => child.once('disconnect', resolve));
  proc.exited = new Promise((resolve) => {
    child.once('exit', async (code, signal) => {
      liveChildren.delete(child);
      if (child.connected) await disconnected;
      markReady();
      resolve();
      if (proc.expectKill || receiver.stopping) return;
      if (code === 0 && proc.done) {
        receiver.markFinished();
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const tail = proc.stderr.trim().split('\n').slice(-3).join(' | ');
      failRun(new DemoError(`receiver ${receiver.index} ${how} before it was done${tail ? `: ${tail}` : ''}`));
    });
  });
  receiver.finished ??= new Promise((resolve) => (receiver.markFinished = resolve));
  child.once('error', (err) => failRun(new DemoError(`receiver ${receiver.index} could not be started: ${err.message}`)));
  child.on('message', (message) => {
    lastProgress = Date.now();
    switch (message.type) {
      case 'ready':
        markReady();
        break;
      case 'first-row':
        receiver.firstRowAt ??= message.at;
        break;
      case 'file':
        receiver.files.set(message.key, message);
        proc.received.push(message.name);
        proc.offsets.push(message.offset);
        break;
      case 'paused':
        crashDrill(receiver, message.name).catch(failRun);
        break;
      case 'done':
        proc.done = true;
        receiver.doneAt = message.at;
        break;
      case 'error':
        failRun(new DemoError(`receiver ${receiver.index} failed: ${message.error}`));
        break;
    }
  });
  child.send({
    url: receiver.url,
    channel: receiver.channel,
    consumer: receiver.consumer,
    connectionName: receiver.connectionName,
    pauseInFile,
  });
  return proc.ready;
}

/** --kill-receiver: the receiver stopped in the middle of a file; kill it hard and start it again. */
async function crashDrill(receiver, name) {
  const proc = receiver.proc;
  proc.expectKill = true;
  proc.child.kill('SIGKILL');
  await proc.exited;
  if (interrupt.signal.aborted) return;
  receiver.restarts++;
  receiver.killedIn = name;
  console.log(
    `demo: receiver ${receiver.index} killed (SIGKILL) in the middle of ${name}, after ${receiver.files.size} acknowledged ` +
      `file${receiver.files.size === 1 ? '' : 's'}; starting it again as consumer ${receiver.consumer}`,
  );
  await launch(receiver);
}

/** Tell every receiver process to stop, then kill those that do not within STOP_MS. */
async function stopReceivers(receivers) {
  const procs = receivers.map((r) => {
    r.stopping = true;
    return r.proc;
  }).filter((p) => p !== undefined && liveChildren.has(p.child));
  for (const p of procs) if (p.child.connected) p.child.send({ type: 'stop' });
  const all = Promise.all(procs.map((p) => p.exited));
  const timer = setTimeout(() => procs.forEach((p) => p.child.kill('SIGKILL')), STOP_MS);
  await all;
  clearTimeout(timer);
}

/**
 * Best effort: wait until every receiver's blocking connection (named `<tag>-receiver-<n>`, like
 * the receiver's own connection it duplicates) is blocked in XREADGROUP, waiting for a file.
 */
async function waitForBlockedReceivers(client, tag, count, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    checkInterrupted();
    let clients;
    try {
      clients = String(await client.client('LIST'));
    } catch {
      return false; // CLIENT LIST not allowed (ACL): just go on
    }
    const blocked = clients.split('\n').filter((line) => line.includes(` name=${tag}-receiver-`) && /\bflags=\S*b/.test(line));
    if (blocked.length >= count) return true;
    await sleep(10);
  }
  return false;
}

/**
 * Every SAMPLE_MS, on a connection of its own: Redis's used_memory, and whether the sender's
 * memory guard is waiting for freed memory (its blocking connection, a duplicate of the sender's
 * and so named like it, blocked in XREAD).
 */
function sampleMemory(client, limit, senderName) {
  const s = { peak: 0, samples: 0, over: 0, waiting: 0, clientList: true, running: true };
  s.loop = (async () => {
    while (s.running) {
      try {
        const [[memErr, memory], [listErr, clients]] = await client.pipeline().info('memory').client('LIST').exec();
        if (memErr) throw memErr;
        const used = Number(/^used_memory:(\d+)/m.exec(memory)?.[1]);
        s.samples++;
        if (used > s.peak) s.peak = used;
        if (used > limit) s.over++;
        if (listErr) s.clientList = false; // CLIENT LIST not allowed (ACL)
        else if (String(clients).split('\n').some((line) => line.includes(` name=${senderName} `) && /\bflags=\S*b/.test(line) && / cmd=xread\b/.test(line))) s.waiting++;
      } catch {
        // a failed reading is not a sample
      }
      await sleep(SAMPLE_MS);
    }
  })();
  s.stop = async () => {
    s.running = false;
    await s.loop;
  };
  return s;
}

// ---------------------------------------------------------------------------------------------
// Printing

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

function printDays(files, agg) {
  console.log('\nper day (each receiver aggregated requests and bytes served per day and country; all of them agree):');
  console.log(
    table(
      ['day', 'requests', 'bytes served', 'countries', 'top countries by requests'],
      files.map((f) => {
        const countries = [...(agg.days.get(f.day) ?? new Map()).entries()].sort((a, b) => b[1].requests - a[1].requests);
        const requests = countries.reduce((n, [, c]) => n + c.requests, 0);
        const served = countries.reduce((n, [, c]) => n + c.bytes, 0);
        return [
          `${f.day} ${f.weekday}`,
          int(requests),
          sizeOf(served),
          String(countries.length),
          countries.slice(0, 3).map(([country, c]) => `${country} ${pct(c.requests, requests)}`).join(', '),
        ];
      }),
      [false, true, true, true, false],
    ),
  );
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
  const privateServer = !url;
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
  const tag = `rfs-demo-${randomBytes(3).toString('hex')}`;
  const redis = await connectRedis(url, `${tag}-sender`);
  const monitor = await connectRedis(url, `${tag}-monitor`);
  const serverInfo = await redis.info('server').catch(() => '');
  if (privatePid !== undefined && Number(/^process_id:(\d+)/m.exec(serverInfo)?.[1]) !== privatePid) {
    // Another process took the port between the PING and now: never write into someone else's server.
    throw new DemoError('the private redis-server lost its port to another process; run the demo again');
  }
  const version = /^redis_version:(\S+)/m.exec(serverInfo)?.[1];
  if (version) console.log(`demo: Redis ${version}`);

  // 2. The channel: never touch one the demo did not create.
  const channel = opts.channel ?? (privateServer ? 'demo-logs' : `demo-logs-${randomBytes(4).toString('hex')}`);
  const patterns = channelKeyPatterns(channel);
  const existing = [...(await scanKeys(redis, patterns.log)), ...(await scanKeys(redis, patterns.files))];
  if (existing.length > 0) {
    throw new DemoError(
      `the channel ${JSON.stringify(channel)} already has ${existing.length} key${existing.length === 1 ? '' : 's'} on this server ` +
        `(${existing[0]}); the demo never touches a channel it did not create: pick another --channel`,
    );
  }

  // 3. The sender's log directory, and the expected aggregate computed directly while generating it.
  const logDir = join(tempDir, 'logs');
  mkdirSync(logDir);
  console.log(
    `demo: generating ${DAYS.length} days of access log (seed ${opts.seed}, ~${opts.sizeMiB} MiB in total as sent, ` +
      `the oldest gzipped at level ${GZIP_LEVEL}) ...`,
  );
  const { files, seconds: genSeconds } = await generate(logDir, opts.sizeMiB, opts.seed);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const largest = Math.max(...files.map((f) => f.size));
  console.log(`demo: sender's log directory ${logDir} (generated in ${genSeconds.toFixed(1)} s, not timed below)`);
  console.log(
    table(
      ['file', 'size', 'raw CSV', 'rows', ''],
      files.map((f) => [f.name, sizeOf(f.size), sizeOf(f.rawBytes), int(f.rows), f.note]),
      [false, true, true, true, false],
    ),
  );
  checkInterrupted();

  // 4. The receivers, first: each a process with its own connection, as on separate machines.
  const receivers = [];
  let channelCreated = false;
  let channelRemoved = false;
  let sending;
  cleanups.push(async () => {
    // After a failure or Ctrl-C on a shared server: the channel's files (acknowledged ones are
    // gone already) and the channel. A private server goes away with everything in it.
    if (!channelCreated || channelRemoved || privateServer) return;
    await Promise.race([sending?.catch(() => {}), sleep(10_000, undefined, { ref: false })]);
    for await (const f of list(redis, { match: `${globEscape(channel)}/*` })) await remove(redis, f.key);
    await removeChannel(redis, channel);
  });
  cleanups.push(() => stopReceivers(receivers));
  for (let i = 1; i <= opts.receivers; i++) receivers.push(newReceiver(i, channel, url, tag));
  channelCreated = true; // receiveFiles creates the channel's log as it joins
  const ready = Promise.all(
    receivers.map((r) => launch(r, { pauseInFile: r.index === opts.killReceiver ? 2 : undefined })),
  );
  const timeout = sleep(READY_MS, 'timeout', { ref: false });
  if ((await unlessInterrupted(Promise.race([ready, timeout]))) === 'timeout') {
    throw new DemoError(`the receivers were not connected to Redis after ${READY_MS / 1000} s`);
  }
  const blocked = await waitForBlockedReceivers(redis, tag, opts.receivers, 10_000);
  console.log(
    `demo: ${opts.receivers} receiver${opts.receivers === 1 ? '' : 's'} ${blocked ? 'blocked in XREADGROUP, ' : ''}waiting on channel ` +
      `${JSON.stringify(channel)} (a process and a Redis connection each; receiveFiles with decompress, csv-parse, ack; ` +
      `${availableParallelism()} CPUs)`,
  );

  // 5. The sender, with a memory limit that bites: room for the largest file and a half.
  const startMemory = await usedMemory(monitor);
  const headroom = Math.max(MIN_HEADROOM, Math.ceil(HEADROOM_FACTOR * largest));
  const maxRedisMemory = Math.ceil(startMemory + headroom);
  console.log(
    `demo: sending ${files.length} files (${sizeOf(totalBytes)}) with sendFiles: consumers ${opts.receivers}, ttl ${TTL_SECONDS} s, ` +
      `maxRedisMemory ${mib(maxRedisMemory)} = used_memory at start ${mib(startMemory)} + ${mib(headroom)} ` +
      `(${HEADROOM_FACTOR} x the largest file${headroom === MIN_HEADROOM ? `, at least ${mib(MIN_HEADROOM)}` : ''})`,
  );
  const sampler = sampleMemory(monitor, maxRedisMemory, `${tag}-sender`);
  cleanups.push(() => sampler.stop());
  lastProgress = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress < STALL_MS) return;
    usedMemory(monitor)
      .catch(() => Number.NaN)
      .then((used) =>
        failRun(
          new DemoError(
            `no receiver made progress for ${STALL_MS / 1000} s (Redis used_memory ${mib(used)}, maxRedisMemory ${mib(maxRedisMemory)}): ` +
              'the run is stuck',
          ),
        ),
      );
  }, 1000);
  cleanups.push(() => clearInterval(watchdog));
  const senderStart = clockMs();
  let senderEnd;
  sending = (async () => {
    const sent = await sendFiles(
      redis,
      channel,
      files.map((f) => f.path),
      { consumers: opts.receivers, maxRedisMemory, ttl: TTL_SECONDS, contentType: 'text/csv', signal: interrupt.signal },
    );
    senderEnd = clockMs();
    await closeChannel(redis, channel);
    return sent;
  })();
  sending.catch(() => {});
  const sent = await unlessInterrupted(sending);
  console.log(`demo: the sender sent ${sent.length} files in ${((senderEnd - senderStart) / 1000).toFixed(2)} s and closed the channel`);

  // 6. The receivers end at the close, once they have processed and acknowledged every file.
  await unlessInterrupted(Promise.race([Promise.all(receivers.map((r) => r.finished)), failure]));
  clearInterval(watchdog);
  await sampler.stop();
  const endAt = Math.max(...receivers.map((r) => r.doneAt));
  const drill = opts.killReceiver !== undefined;
  console.log('\nreceivers (times from the sender\'s start; MiB/s = stored bytes received / time from the sender\'s start to the receiver\'s end):');
  console.log(
    table(
      ['receiver', 'files', 'rows', 'stored', 'MiB/s', 'first row', 'done', ...(drill ? ['restarts'] : [])],
      receivers.map((r) => {
        const results = [...r.files.values()];
        const stored = results.reduce((n, f) => n + f.storedBytes, 0);
        const seconds = (r.doneAt - senderStart) / 1000;
        return [
          r.consumer,
          String(results.length),
          int(results.reduce((n, f) => n + f.agg.rows, 0)),
          mib(stored),
          (stored / MiB / seconds).toFixed(1),
          r.firstRowAt === undefined ? '-' : `${Math.max(0, Math.round(r.firstRowAt - senderStart))} ms`,
          `${seconds.toFixed(2)} s`,
          ...(drill ? [String(r.restarts)] : []),
        ];
      }),
      [false, true, true, true, true, true, true, true],
    ),
  );
  const delivered = receivers.reduce((n, r) => n + [...r.files.values()].reduce((m, f) => m + f.storedBytes, 0), 0);
  const allSeconds = (endAt - senderStart) / 1000;
  console.log(
    `total: ${files.length} files, ${sizeOf(totalBytes)} (${int(totalBytes)} bytes) sent, ${opts.receivers} receivers, ` +
      `${sizeOf(delivered)} received in ${allSeconds.toFixed(2)} s = ${(delivered / MiB / allSeconds).toFixed(1)} MiB/s aggregate`,
  );
  const over = sampler.peak - maxRedisMemory;
  const waited = sampler.clientList
    ? sampler.waiting > 0
      ? `the sender's memory guard waited for freed memory in ${sampler.waiting} samples (about ${((sampler.waiting * allSeconds) / sampler.samples).toFixed(1)} s)`
      : "the sender's memory guard never waited for freed memory"
    : '';
  console.log(
    `Redis used_memory (${int(sampler.samples)} samples, one every ${SAMPLE_MS} ms): peak ${mib(sampler.peak)} vs maxRedisMemory ${mib(maxRedisMemory)}, ` +
      (over > 0 ? `${mib(over)} over it (over the limit in ${sampler.over} samples)` : `${mib(-over)} under it`) +
      (waited ? `; ${waited}` : ''),
  );
  if (opts.receivers + 1 > availableParallelism()) {
    console.log(
      `  ${opts.receivers} receiver processes gunzip and parse CSV on ${availableParallelism()} CPUs at once: csv-parse bounds the receivers, ` +
        'and their CPU use slows the sender too',
    );
  }

  // 7. The check: every receiver, every file, against the direct computation.
  const expectedAll = files.reduce((agg, f) => mergeAggregate(agg, f.expected), newAggregate());
  let mismatches = 0;
  for (const r of receivers) {
    const byName = new Map([...r.files.values()].map((f) => [f.name, f]));
    let why;
    for (const f of files) {
      const got = byName.get(f.name);
      why = !got
        ? `${f.name} was not received`
        : got.storedBytes !== f.size
          ? `${f.name}: received ${got.storedBytes} stored bytes, the file has ${f.size}`
          : got.csvBytes !== f.rawBytes
            ? `${f.name}: parsed ${got.csvBytes} CSV bytes, the file has ${f.rawBytes}`
            : compareAggregates(f.expected, got.agg);
      if (why) break;
    }
    if (!why && r.files.size !== files.length) why = `${r.files.size} files received, ${files.length} sent`;
    if (!why) why = compareAggregates(expectedAll, [...r.files.values()].reduce((agg, f) => mergeAggregate(agg, f.agg), newAggregate()));
    if (why) {
      mismatches++;
      console.error(`demo: receiver ${r.index} does NOT match the direct computation: ${why}`);
    }
  }
  if (drill) {
    // A restarted receiver resumes at the first file it had not acknowledged, from its beginning
    // (its offset would say otherwise: Redis trims only what every receiver had consumed).
    const r = receivers[opts.killReceiver - 1];
    const again = r.proc.received;
    if (again[0] !== r.killedIn) {
      mismatches++;
      console.error(`demo: receiver ${r.index} was killed in ${r.killedIn}, but its new process started with ${again[0] ?? 'no file'}`);
    } else {
      console.log(
        `demo: receiver ${r.index}'s new process resumed at ${r.killedIn} from byte ${r.proc.offsets[0]} and received ${again.join(', ')}`,
      );
    }
  }
  if (mismatches === 0) printDays(files, expectedAll);
  if (mismatches > 0) throw new DemoError(`${mismatches} of ${receivers.length} receivers do not match the direct computation`);
  console.log(
    `\ndemo: all ${receivers.length} receivers match the direct computation` +
      (drill ? ` (receiver ${opts.killReceiver} was killed and restarted)` : ''),
  );

  // 8. Redis left clean: every file went with its last acknowledgement; then the channel goes.
  const fileKeys = await scanKeys(redis, patterns.files);
  if (fileKeys.length > 0) {
    throw new DemoError(`${fileKeys.length} keys of the channel's files are still in Redis although every receiver acknowledged every file (${fileKeys[0]})`);
  }
  if (!(await removeChannel(redis, channel))) throw new DemoError(`removeChannel found no channel ${JSON.stringify(channel)}`);
  channelRemoved = true;
  const left = [...(await scanKeys(redis, patterns.log)), ...(await scanKeys(redis, patterns.files))];
  if (left.length > 0) throw new DemoError(`${left.length} keys of the demo are left in Redis (${left[0]})`);
  if (privateServer) {
    // The package's notification stream for writers held back by a memory limit, shared by every
    // writer of the prefix (a server of the demo's own has no other writer).
    await redis.del(`${PREFIX}memory:freed`);
    const dbsize = await redis.dbsize();
    if (dbsize !== 0) {
      const some = await redis.scan('0', 'COUNT', 100);
      throw new DemoError(`the private Redis still holds ${dbsize} keys (${some[1].slice(0, 3).join(', ')})`);
    }
  }
  console.log(
    `demo: every file was deleted by its last acknowledgement; removed the channel; ` +
      (privateServer
        ? 'Redis is empty (DBSIZE 0)'
        : `Redis is empty of the demo's keys (SCAN ${patterns.log} and ${patterns.files}: none)`),
  );
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
    console.log(process.env.REDIS_URL ? 'demo: removed the temp dir' : 'demo: stopped the private redis-server and removed the temp dir');
  }
  process.exitCode = code;
  // Nothing should keep the process alive now; if something does, do not hang.
  setTimeout(() => process.exit(code), 3000).unref();
}

if (process.argv[2] === '--role' && process.argv[3] === 'receiver' && process.send) await receiverProcess();
else await run();
