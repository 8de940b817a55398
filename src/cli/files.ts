/**
 * `redis-file`: the commands on stored files, stat, ls, rm, expire and mv.
 * @internal
 * @module
 */

import { expire, type FileStat, list, remove, rename, stat } from '../index.js';
import { formatBytes, formatDate, formatDuration, showKey, statJson } from './format.js';
import { checked, EXIT, type GlobalOptions, interrupt, notFound, out, report, UsageError, type Client } from './runtime.js';

export async function statCommand(redis: Client, g: GlobalOptions, key: string, o: { json?: boolean }): Promise<void> {
  const s = await checked(() => stat(redis, key, { prefix: g.prefix }));
  if (o.json) {
    await out(`${statJson(s)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['key', showKey(s.key)],
    ['state', s.state],
    ['size', `${formatBytes(s.size)} (${s.size} bytes)${s.state === 'writing' ? ' so far' : ''}`],
    ['chunks', `${s.chunks} of ${formatBytes(s.chunkSize, true)}`],
    ['encoding', s.contentEncoding],
    ['type', s.contentType ?? '-'],
    ['metadata', Object.keys(s.metadata).length === 0 ? '-' : Object.entries(s.metadata).map(([k, v]) => `${k}=${v}`).join('\n          ')],
    ['crc32', s.crc32 ?? '-'],
    ['created', formatDate(s.created)],
    ['updated', formatDate(s.updated)],
    ['expires', s.ttl === undefined ? 'never' : `in ${formatDuration(s.ttl)} (${s.ttl} s)`],
  ];
  await out(rows.map(([name, value]) => `${`${name}:`.padEnd(10)}${value}\n`).join(''));
}

export async function lsCommand(redis: Client, g: GlobalOptions, pattern: string, o: { json?: boolean }): Promise<void> {
  // SCAN may yield a file twice (while Redis resizes its tables): print each once.
  const seen = new Set<string>();
  const files = checked(() => list(redis, { prefix: g.prefix, match: pattern }));
  const all: FileStat[] = [];
  for await (const file of files) {
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    if (seen.has(file.key)) continue;
    seen.add(file.key);
    // JSON lines stream as they come; the listing for people is sorted by key, so it waits.
    if (o.json) await out(`${statJson(file)}\n`);
    else all.push(file);
  }
  if (o.json) return;
  all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const lines = all.map((f) => {
    const encoding = f.contentEncoding === 'identity' ? '-' : f.contentEncoding;
    return `${f.state.padEnd(8)} ${formatBytes(f.size).padStart(10)}  ${encoding.padEnd(8)} ${formatDate(f.updated, false)}  ${showKey(f.key)}\n`;
  });
  for (let i = 0; i < lines.length; i += 1000) await out(lines.slice(i, i + 1000).join(''));
}

export async function rmCommand(redis: Client, g: GlobalOptions, keys: string[], o: { force?: boolean }): Promise<number> {
  let failed = 0;
  for (const key of keys) {
    try {
      if (!(await checked(() => remove(redis, key, { prefix: g.prefix }))) && !o.force) throw notFound(key);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      // One line per key that could not be removed; the others are still removed.
      report(err, `rm ${JSON.stringify(key)}`);
      failed++;
    }
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

export async function expireCommand(redis: Client, g: GlobalOptions, key: string, seconds: number | null): Promise<void> {
  if (!(await checked(() => expire(redis, key, seconds, { prefix: g.prefix })))) throw notFound(key);
}

export async function mvCommand(redis: Client, g: GlobalOptions, from: string, to: string, o: { overwrite?: boolean }): Promise<void> {
  await checked(() => rename(redis, from, to, { prefix: g.prefix, overwrite: o.overwrite ?? false }));
}
