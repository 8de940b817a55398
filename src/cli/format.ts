/**
 * `redis-file`: what the command prints (sizes, dates, durations, keys, JSON, the progress bar's
 * line, the library's messages in the command's words) and how it reads its arguments (256k, 7d,
 * key=value, receivers, key patterns), and URLs with their password masked.
 * @internal
 * @module
 */

import { InvalidArgumentError } from 'commander';
import type { FileStat } from '../index.js';

// ---------------------------------------------------------------------------------------------
// Output

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; with `trim`, 262144 → "256 KiB" (not "256.0 KiB"). */
export function formatBytes(n: number, trim = false): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${trim && Number.isInteger(v) ? v : v.toFixed(1)} ${UNITS[i]}`;
}

/** The unit {@link formatBytes} gives `n` in: 0 for B, 1 for KiB, … */
export function byteUnit(n: number): number {
  let i = 0;
  for (let v = n; v >= 1024 && i < UNITS.length - 1; v /= 1024) i++;
  return i;
}

/**
 * `done` and `total` in the unit of `total`: "96.0/190.7 MiB", "512/1000 B", the first padded to
 * the second's width.
 */
export function formatShare(done: number, total: number): string {
  const unit = byteUnit(total);
  const num = (n: number): string => (unit === 0 ? String(n) : (n / 1024 ** unit).toFixed(1));
  return `${num(done).padStart(num(total).length)}/${num(total)} ${UNITS[unit]}`;
}

/** Local time as "2026-11-30 10:15:02" (or without seconds). */
export function formatDate(d: Date, seconds = true): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return seconds ? `${date}:${p(d.getSeconds())}` : date;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** Keys may hold spaces or control characters: quote those so that one file stays one line. */
export function showKey(key: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  return /[\s\x00-\x1f\x7f"]/.test(key) ? JSON.stringify(key) : key;
}

/**
 * A stored text (a content type, a metadata entry) shown on a line of its own: quoted when it holds
 * control characters, so that a newline in it cannot pass for lines of the output.
 */
export function showText(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  return /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text) : text;
}

/** What `stat --json` and `ls --json` print for a file: the FileStat, dates in ISO 8601. */
export function statJson(s: FileStat): string {
  return JSON.stringify({
    key: s.key,
    state: s.state,
    writerAlive: s.writerAlive,
    size: s.size,
    chunks: s.chunks,
    chunkSize: s.chunkSize,
    contentEncoding: s.contentEncoding,
    contentType: s.contentType ?? null,
    metadata: s.metadata,
    crc32: s.crc32 ?? null,
    created: s.created.toISOString(),
    updated: s.updated.toISOString(),
    ttl: s.ttl ?? null,
    consumers: s.consumers ?? null,
    acknowledgedBy: s.acknowledgedBy,
  });
}

// ---------------------------------------------------------------------------------------------
// The progress bar's line

const LABEL_MAX = 28;
const LABEL_MIN = 8;
const BAR_MAX = 24;
const BAR_MIN = 8;

/**
 * One line of the progress bar, `label [bar] figures`, in at most `columns - 1` characters (a
 * line that reaches the last column makes some terminals wrap, and cli-progress cuts it at the
 * width): the figures are kept whole, the label is shortened from the left (the end of a key says
 * most), and the bar gets what is left, between 8 and 24 cells, or is left out. The room is planned
 * for figures `reserve` characters long (the widest they get while the transfer runs), so that the
 * bar keeps its width as the rate and the time left change. `fraction` is `undefined` when the total
 * is not known: no bar then.
 */
export function barLine(
  label: string,
  fraction: number | undefined,
  figures: string,
  columns: number,
  reserve = figures.length,
): string {
  const width = Math.max(20, columns) - 1;
  // For the label and the bar, each followed by a space.
  const room = width - Math.max(reserve, figures.length);
  const withBar = fraction !== undefined && room >= LABEL_MIN + 1 + BAR_MIN + 1;
  const name = shorten(label, clamp(room - 1 - (withBar ? BAR_MIN + 1 : 0), LABEL_MIN, LABEL_MAX));
  let line = `${name} ${figures}`;
  if (withBar) {
    const cells = Math.min(BAR_MAX, room - name.length - 2);
    const done = Math.round(clamp(fraction, 0, 1) * cells);
    line = `${name} ${'\u2588'.repeat(done)}${'\u2591'.repeat(cells - done)} ${figures}`;
  }
  return line.length > width ? line.slice(0, width) : line;
}

function shorten(text: string, max: number): string {
  return text.length > max ? `\u2026${text.slice(text.length - max + 1)}` : text;
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

// ---------------------------------------------------------------------------------------------
// The library's messages in the command's words

/** The library's option names that the command sets from a flag of its own. */
const FLAGS: Readonly<Record<string, string>> = Object.freeze({
  overwrite: '-f/--overwrite',
  chunkSize: '--chunk-size',
  compress: '-z/--gzip',
  contentType: '--content-type',
  metadata: '--meta',
  ttl: '--ttl',
  waitReplicas: '--wait-replicas',
  consumers: '--consumers',
  consumer: '--consumer',
  maxRedisMemory: '--max-redis-memory',
  start: '--start',
  end: '--end',
  decompress: '-d/--decompress',
  waitForCreate: '--wait-for-create',
  prefix: '--prefix',
});

/**
 * A message of the library (or of ioredis) as the command's user reads it: the options it names are
 * the command's flags, and those the command has no flag for are left out. The library's messages
 * stay as they are for the library's users; the codes, not the words, are the contract.
 */
export function cliWording(message: string): string {
  return (
    message
      // "a complete file is stored at this key and `overwrite` is off"
      .replace(/ and `overwrite` is off\b/g, `; use ${FLAGS.overwrite} to replace it`)
      // "no file is stored at this key (`waitForCreate` waits for one)"
      .replace(/ \(`waitForCreate` waits for one\)/g, `; to wait for it to be created, add ${FLAGS.waitForCreate} 30s`)
      // "within waitForCreate (60000 ms)", "for idleTimeout (30000 ms)"
      .replace(
        /\b(within|for) (waitForCreate|idleTimeout|waitTimeout|retryTimeout) \((\d+) ms\)/g,
        (_, word: string, name: string, ms: string) => {
          const time = formatMs(Number(ms));
          return `${word} ${name === 'waitForCreate' ? `${FLAGS.waitForCreate} (${time})` : time}`;
        },
      )
      // ioredis gives up on a command after its reconnection attempts, naming an option of its own.
      .replace(
        /Reached the max retries per request limit \(which is \d+\)\. Refer to "\w+" option for details\./g,
        LOST,
      )
      // ioredis's commandTimeout, which the tool sets past --redis-timeout (see connection.ts).
      .replace(/\bCommand timed out\b/g, 'Redis did not answer in time (--redis-timeout)')
      // A URL of one node of a cluster, given without --cluster.
      .replace(/: (list them with|give the package) a cluster client\b/g, ': add --cluster')
      .replace(/`(\w+)`/g, (whole, name: string) => FLAGS[name] ?? whole)
  );
}

const LOST = 'the connection to Redis was lost and could not be restored';

/** 60000 → "60 s", 1500 → "1.5 s", 250 → "250 ms". */
function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** The URL with its password masked, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

// ---------------------------------------------------------------------------------------------
// Key patterns: Redis globs (* ? [abc], \ escapes the next character), as SCAN MATCH takes them

const GLOB = new Set(['*', '?', '[']);

/** Whether `text` holds a wildcard that is not escaped: it names every key it matches. */
export function isPattern(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (GLOB.has(text[i]!)) return true;
  }
  return false;
}

/**
 * The key an argument that is not a pattern names: itself, unless it escapes a wildcard
 * (`logs/a\*b` names `logs/a*b`): then every `\` escapes the character after it, as in a pattern.
 */
export function literalKey(text: string): string {
  if (!/\\[*?[]/.test(text)) return text;
  return text.replace(/\\(.)/gs, '$1');
}

/**
 * The fixed directories a pattern starts with: what comes before its first wildcard, up to and
 * including the last `/` there, unescaped. Every key the pattern matches starts with it:
 * `logs/2026-*.gz` → `logs/`, `a/b?/c` → `a/`, `*` → the empty string.
 */
export function patternBase(pattern: string): string {
  let literal = '';
  let base = '';
  for (let i = 0; i < pattern.length; i++) {
    let c = pattern[i]!;
    if (c === '\\') c = pattern[++i] ?? '';
    else if (GLOB.has(c)) break;
    literal += c;
    if (c === '/') base = literal;
  }
  return base;
}

/**
 * The path segments of a key's relative name under a local directory, or `undefined` when the
 * name would not stay a file inside it: an empty segment (a leading, trailing or doubled `/`),
 * `.` or `..`, a NUL, or on Windows `\` or `:`.
 */
export function pathUnder(name: string): string[] | undefined {
  const parts = name.split('/');
  const bad = (part: string): boolean =>
    part === '' ||
    part === '.' ||
    part === '..' ||
    part.includes('\0') ||
    (process.platform === 'win32' && /[\\:]/.test(part));
  return parts.some(bad) ? undefined : parts;
}

// ---------------------------------------------------------------------------------------------
// Argument parsers (commander calls them; InvalidArgumentError is a usage error, exit 2)

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "262144", "256k", "256KiB", "1m", "1.5M" → bytes (binary multiples). */
export function parseBytes(text: string, min: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  const value = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(
      `expected a whole number of bytes${min > 0 ? ` of at least ${min}` : ''}, optionally with a suffix k, m, g, t (1024-based), as in 256k or 1m`,
    );
  }
  return value;
}

/** {@link parseBytes} as a commander argument parser. */
export const bytesArg =
  (min: number) =>
  (text: string): number =>
    parseBytes(text, min);

const TIME_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * A duration: a plain number in `plainUnit` ('ms' or 's'), or with a unit (500ms, 30s, 5m, 2h, 1d),
 * from `min` to `max` (in `plainUnit`).
 */
export function parseDuration(text: string, plainUnit: 'ms' | 's', min: number, max = 2 ** 31 - 1): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  let value = NaN;
  if (m) {
    const seconds = Number(m[1]) * TIME_UNITS[(m[2] ?? plainUnit).toLowerCase()]!;
    value = Math.round(plainUnit === 'ms' ? seconds * 1000 : seconds);
  }
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const units = plainUnit === 'ms' ? 'ms, s, m, h, d' : 's, m, h, d';
    // The most is said whenever it is what was passed (25d in ms, 100000d in s).
    const most = `at most ${max}${value > max ? ` (${formatDuration(plainUnit === 'ms' ? max / 1000 : max)})` : ''}`;
    const bounds = [min > 0 ? `at least ${min}` : '', max < 2 ** 31 - 1 || value > max ? most : ''].filter(Boolean);
    throw new InvalidArgumentError(
      `expected ${plainUnit === 'ms' ? 'milliseconds' : 'seconds'}${bounds.length > 0 ? ` (${bounds.join(', ')})` : ''}, or a number with a unit: ${units} (as in 30s or 5m)`,
    );
  }
  return value;
}

export function parseMeta(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value');
  return { ...previous, [text.slice(0, eq)]: text.slice(eq + 1) };
}

/**
 * `send --consumers`: a number of receivers ("3"), or their names separated by commas
 * ("eu-1,eu-2"; a single name that is all digits would read as a number, so "eu-1," names one).
 */
export function parseConsumers(text: string): number | string[] {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new InvalidArgumentError('expected a number of receivers of at least 1, or their names');
    return n;
  }
  const names = t.split(',').map((name) => name.trim());
  if (names.at(-1) === '' && names.length > 1) names.pop();
  if (names.some((name) => name === '')) {
    throw new InvalidArgumentError(
      'expected a number of receivers (as in 3) or their --consumer names separated by commas (as in eu-1,eu-2)',
    );
  }
  return [...new Set(names)];
}
