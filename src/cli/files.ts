/**
 * `redis-file`: the commands on stored files, stat, ls, rm, expire and mv; and the keys a pattern
 * matches, which ls, rm and get share.
 * @internal
 * @module
 */

import { ErrorCodes, expire, type FileStat, list, RedisFileError, remove, rename, stat } from '../index.js';
import type { Client, GlobalOptions } from './connection.js';
import { EXIT, Failure, notFound, UsageError } from './errors.js';
import {
  formatBytes,
  formatDate,
  formatDuration,
  isPattern,
  literalKey,
  showKey,
  showText,
  statJson,
} from './format.js';
import { out, report } from './output.js';
import { checked } from './runtime.js';
import { interrupt, stopReason } from './stop.js';

const quote = (text: string): string => JSON.stringify(text);
const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;

/**
 * The files whose keys match a pattern, sorted by key, each once (SCAN may yield one twice while
 * Redis resizes its tables). SCAN-based, through the library's list: it never blocks Redis.
 */
export async function matching(redis: Client, g: GlobalOptions, pattern: string): Promise<FileStat[]> {
  const seen = new Map<string, FileStat>();
  for await (const file of checked(() => list(redis, { prefix: g.prefix, match: pattern }))) {
    const stop = stopReason();
    if (stop) throw stop;
    seen.set(file.key, file);
  }
  return [...seen.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export async function statCommand(redis: Client, g: GlobalOptions, key: string, o: { json?: boolean }): Promise<void> {
  const s = await checked(() => stat(redis, key, { prefix: g.prefix }));
  if (o.json) {
    await out(`${statJson(s)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['key', showKey(s.key)],
    [
      'state',
      s.state === 'writing' && !s.writerAlive
        ? 'writing, but its writer is dead (no heartbeat within its lease)'
        : s.state,
    ],
    ['size', `${formatBytes(s.size)} (${s.size} bytes)${s.state === 'writing' ? ' so far' : ''}`],
    ['chunks', `${s.chunks} of ${formatBytes(s.chunkSize, true)}`],
    ['encoding', s.contentEncoding],
    ['type', s.contentType === undefined ? '-' : showText(s.contentType)],
    [
      'metadata',
      Object.keys(s.metadata).length === 0
        ? '-'
        : Object.entries(s.metadata)
            .map(([k, v]) => `${showText(k)}=${showText(v)}`)
            .join('\n          '),
    ],
    ['crc32', s.crc32 ?? '-'],
    ['created', formatDate(s.created)],
    ['updated', formatDate(s.updated)],
    ['expires', s.ttl === undefined ? 'never' : `in ${formatDuration(s.ttl)} (${s.ttl} s)`],
  ];
  // Who must read it before it is deleted, and who has: only for a file written with consumers.
  if (s.consumers !== undefined) {
    rows.push([
      'consumers',
      typeof s.consumers === 'number' ? `${s.consumers} (any names)` : s.consumers.map(showText).join(', '),
    ]);
    rows.push(['read by', s.acknowledgedBy.length === 0 ? '-' : s.acknowledgedBy.map(showText).join(', ')]);
  }
  // At least one space after a name, however long (`consumers` fills the column).
  await out(rows.map(([name, value]) => `${`${name}: `.padEnd(10)}${value}\n`).join(''));
}

export async function lsCommand(
  redis: Client,
  g: GlobalOptions,
  pattern: string,
  o: { json?: boolean },
): Promise<void> {
  if (o.json) {
    // JSON lines stream as they come (SCAN may yield a file twice: print each once).
    const seen = new Set<string>();
    for await (const file of checked(() => list(redis, { prefix: g.prefix, match: pattern }))) {
      if (interrupt.signal.aborted) throw interrupt.signal.reason;
      if (seen.has(file.key)) continue;
      seen.add(file.key);
      await out(`${statJson(file)}\n`);
    }
    return;
  }
  // The listing for people is sorted by key, so it waits for the last one.
  const all = await matching(redis, g, pattern);
  const lines = all.map((f) => {
    const encoding = f.contentEncoding === 'identity' ? '-' : f.contentEncoding;
    // A file whose writer died shows as such, not as one being written.
    const state = f.state === 'writing' && !f.writerAlive ? 'dead' : f.state;
    return `${state.padEnd(8)} ${formatBytes(f.size).padStart(10)}  ${encoding.padEnd(8)} ${formatDate(f.updated, false)}  ${showKey(f.key)}\n`;
  });
  for (let i = 0; i < lines.length; i += 1000) await out(lines.slice(i, i + 1000).join(''));
  // For people at a terminal, as the progress bar; never in what a script reads.
  if (process.stderr.isTTY) {
    process.stderr.write(`${files(all.length)}, ${formatBytes(all.reduce((sum, f) => sum + f.size, 0))}\n`);
  }
}

export interface RmOptions {
  force?: boolean;
  dryRun?: boolean;
  quiet?: boolean;
}

/**
 * Remove the files at the keys, and those a pattern matches (with a line that counts them). One
 * line per key that could not be removed; the others are still removed. With --dry-run, print the
 * keys that would go instead.
 */
export async function rmCommand(redis: Client, g: GlobalOptions, args: string[], o: RmOptions): Promise<number> {
  let failed = 0;
  /** Remove one file (or, with --dry-run, say it would go): whether there was one. */
  const removeOne = async (key: string): Promise<boolean> => {
    if (!o.dryRun) return checked(() => remove(redis, key, { prefix: g.prefix }));
    const there = await checked(() => stat(redis, key, { prefix: g.prefix })).then(
      () => true,
      (err: unknown) => {
        if (err instanceof RedisFileError && err.code === ErrorCodes.NOT_FOUND) return false;
        throw err;
      },
    );
    if (there) await out(`${showKey(key)}\n`);
    return there;
  };
  const failure = (err: unknown, context: string): void => {
    const stop = stopReason();
    if (stop) throw stop;
    if (err instanceof UsageError) throw err;
    report(err, context);
    failed++;
  };
  for (const arg of args) {
    if (!isPattern(arg)) {
      const key = literalKey(arg);
      try {
        if (!(await removeOne(key)) && !o.force) throw notFound(key);
      } catch (err) {
        failure(err, `rm ${quote(key)}`);
      }
      continue;
    }
    let keys: string[];
    try {
      keys = (await matching(redis, g, arg)).map((f) => f.key);
      if (keys.length === 0 && !o.force) throw new Failure(`rm ${quote(arg)}: no file matches this pattern`);
    } catch (err) {
      failure(err, `rm ${quote(arg)}`);
      continue;
    }
    let removed = 0;
    for (const key of keys) {
      const stop = stopReason();
      if (stop) throw stop;
      try {
        // Gone since the listing (removed, expired): not counted, not a failure.
        if (await removeOne(key)) removed++;
      } catch (err) {
        failure(err, `rm ${quote(key)}`);
      }
    }
    if (!o.quiet) {
      process.stderr.write(`${o.dryRun ? 'would remove' : 'removed'} ${files(removed)} matching ${quote(arg)}\n`);
    }
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

export async function expireCommand(
  redis: Client,
  g: GlobalOptions,
  key: string,
  seconds: number | null,
): Promise<void> {
  if (!(await checked(() => expire(redis, key, seconds, { prefix: g.prefix })))) throw notFound(key);
}

export async function mvCommand(
  redis: Client,
  g: GlobalOptions,
  from: string,
  to: string,
  o: { overwrite?: boolean },
): Promise<void> {
  await checked(() => rename(redis, from, to, { prefix: g.prefix, overwrite: o.overwrite ?? false }));
}
