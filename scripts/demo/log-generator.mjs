// The sender's log directory: 4 days of a web server's access log as CSV files, the oldest one
// rotated and gzipped (access-2026-11-27.csv.gz, access-2026-11-28.csv, ...), generated
// deterministically from a seed. Each file comes with the aggregate its rows make (aggregate.mjs),
// computed directly while generating: what every receiver must end up with.

import { createWriteStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { addRow, newAggregate } from './aggregate.mjs';

const MiB = 1024 * 1024;
/** One file per day, the oldest rotated and gzipped. */
export const DAYS = [
  { day: '2026-11-27', weekday: 'Fri', traffic: 1.3, gzip: true, note: 'Black Friday; rotated and gzipped' },
  { day: '2026-11-28', weekday: 'Sat', traffic: 0.85, gzip: false, note: '' },
  { day: '2026-11-29', weekday: 'Sun', traffic: 0.8, gzip: false, note: '' },
  { day: '2026-11-30', weekday: 'Mon', traffic: 1.1, gzip: false, note: 'Cyber Monday, today' },
];
export const GZIP_LEVEL = 4;
const COLUMNS = ['time', 'ip', 'country', 'method', 'path', 'status', 'bytes', 'ms'];

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
  ['US', 260, 23],
  ['DE', 95, 46],
  ['GB', 70, 51],
  ['IN', 80, 49],
  ['BR', 55, 177],
  ['FR', 50, 90],
  ['JP', 45, 126],
  ['CA', 35, 99],
  ['NL', 30, 145],
  ['AU', 25, 1],
  ['ES', 25, 88],
  ['IT', 25, 79],
  ['PL', 20, 83],
  ['SE', 15, 81],
  ['KR', 20, 121],
  ['MX', 20, 187],
  ['SG', 15, 103],
  ['ZA', 10, 41],
  ['NG', 10, 105],
  ['AR', 10, 181],
  ['TR', 15, 78],
  ['ID', 20, 36],
  ['VN', 12, 113],
  ['UA', 10, 91],
];
const pickCountry = weighted(COUNTRIES.map((c, i) => [i, c[1]]));
const pickMethod = weighted([
  ['GET', 800],
  ['POST', 120],
  ['HEAD', 30],
  ['PUT', 30],
  ['DELETE', 20],
]);
// path template, weight, typical response size
const PATHS = [
  ['/', 60, 18_000],
  ['/index.html', 20, 18_000],
  ['/api/v1/items/{id}', 180, 2_400],
  ['/api/v1/items', 60, 24_000],
  ['/api/v1/users/{id}/orders', 50, 6_000],
  ['/api/v1/cart', 40, 1_200],
  ['/search', 60, 9_000],
  ['/static/app.{hash}.js', 90, 310_000],
  ['/static/styles.{hash}.css', 70, 48_000],
  ['/images/{id}.jpg', 200, 85_000],
  ['/images/thumbs/{id}.webp', 150, 9_500],
  ['/login', 15, 4_000],
  ['/health', 25, 20],
  ['/favicon.ico', 25, 1_150],
];
const pickPath = weighted(PATHS.map((p, i) => [i, p[1]]));
const pickStatus = weighted([
  [200, 8400],
  [304, 700],
  [301, 80],
  [302, 60],
  [404, 380],
  [400, 60],
  [401, 70],
  [403, 40],
  [429, 50],
  [500, 40],
  [502, 15],
  [503, 25],
  [504, 10],
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
 * Yields one day's CSV as Buffers of about 256 KiB: the header, then `rows` rows in time order
 * (only the first `limit` of them when given). Every row also goes into `agg`, the direct
 * computation the receivers are checked against.
 */
function* accessLog(day, rows, seed, agg, limit = rows) {
  const rand = prng(seed);
  const clock = dayClock(rows, rand);
  const pad2 = (n) => (n < 10 ? `0${n}` : String(n));
  const pad3 = (n) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));
  const hex = (x) => (x | 0).toString(16);
  let lines = [`${COLUMNS.join(',')}\n`];
  let size = 0;
  for (let i = 0; i < limit; i++) {
    const t = clock(i); // ms since midnight UTC; the same text as Date#toISOString
    const hms = `${pad2((t / 3_600_000) | 0)}:${pad2(((t / 60_000) | 0) % 60)}:${pad2(((t / 1000) | 0) % 60)}`;
    const time = `${day}T${hms}.${pad3(t % 1000)}Z`;
    const [country, , octet] = COUNTRIES[pickCountry(rand())];
    const ip =
      rand() < 0.12
        ? `2001:db8:${hex(rand() * 0xffff)}:${hex(rand() * 0xffff)}::${hex(rand() * 0xfff)}`
        : `${octet}.${(rand() * 256) | 0}.${(rand() * 256) | 0}.${1 + ((rand() * 254) | 0)}`;
    const method = pickMethod(rand());
    const [template, , typical] = PATHS[pickPath(rand())];
    let path = template;
    if (template.includes('{id}')) path = template.replace('{id}', String(1000 + ((rand() * rand() * 90_000) | 0)));
    else if (template.includes('{hash}')) path = template.replace('{hash}', HASHES[(rand() * HASHES.length) | 0]);
    else if (template === '/search') {
      path = `/search?q=${WORDS[(rand() * WORDS.length) | 0]}&page=${1 + ((rand() * 5) | 0)}`;
    }
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

/**
 * Write the log directory of about `sizeMiB` (as stored) into `dir`; each file with its sizes and
 * its expected aggregate. `signal` stops it.
 */
export async function generate(dir, sizeMiB, seed, signal) {
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
      { signal },
    );
    files.push({ ...d, name, path, rows: counts[i], rawBytes, size: statSync(path).size, expected });
  }
  return { files, seconds: (performance.now() - started) / 1000 };
}
