/**
 * `redis-file get` and `cat`: a range, a directory as the target, following a file being written,
 * several files, --wait-for-create, a reader of the output that goes away, and get of a pattern
 * into a directory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { expectOneLine, run, start, stateOf, useTempDir, waitUntil } from './helpers/cli.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { put } from './helpers/streams.js';

const redis = connect();
const dir = useTempDir();
afterAll(closeAll);

describe('get', () => {
  it('reads a byte range, --end inclusive', async () => {
    const data = randomBytes(10_000);
    const key = uniqueKey('range');
    await put(redis, key, data, { chunkSize: 1024 });
    const r = await run(['get', key, '--start', '1k', '--end', '5000']);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(data.subarray(1024, 5001))).toBe(true);
  });

  it('writes into a directory under the last segment of the key, and leaves no partial file on failure', async () => {
    const key = uniqueKey('dir');
    await put(redis, `${key}/name.txt`, Buffer.from('hello'));
    const target = mkdtempSync(join(dir(), 'target-'));
    expect((await run(['get', `${key}/name.txt`, target])).code).toBe(0);
    expect(readFileSync(join(target, 'name.txt'), 'utf8')).toBe('hello');

    const failed = await run(['get', `${key}/missing`, join(target, 'missing.txt')]);
    expect(failed.code).toBe(1);
    expect(readdirSync(target)).toEqual(['name.txt']);
  });

  it('writes a file whose name takes all 255 bytes a name may: its temporary name is cut to fit', async () => {
    const key = uniqueKey('long');
    const names = ['a'.repeat(255), `${'字'.repeat(84)}.z`];
    for (const name of names) await put(redis, `${key}/${name}`, Buffer.from(name));
    const one = mkdtempSync(join(dir(), 'long-one-'));
    expect(await run(['get', `${key}/${names[0]}`, one])).toMatchObject({ code: 0, stderr: '' });
    const all = mkdtempSync(join(dir(), 'long-all-'));
    expect(await run(['get', `${key}/*`, `${all}/`])).toMatchObject({ code: 0 });
    expect(readdirSync(one)).toEqual([names[0]]);
    expect(readdirSync(all).sort()).toEqual([...names].sort());
    for (const name of names) expect(readFileSync(join(all, name), 'utf8')).toBe(name);
  });

  it('a target named as a directory (dir/) that does not exist fails before anything is read', async () => {
    const key = uniqueKey('no-dir');
    await put(redis, key, Buffer.from('hello'));
    const parent = mkdtempSync(join(dir(), 'parent-'));
    const r = await run(['get', key, `${join(parent, 'none')}/`]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toMatch(/^redis-file: .*cannot write .*none\/: no such directory/);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('a closed stdout (| head -c 10) ends get quietly', async () => {
    const key = uniqueKey('epipe');
    await put(redis, key, randomBytes(4 * 1024 * 1024));
    const reader = start(['get', key]);
    await waitUntil('get has written something', () => reader.stdout().length >= 10);
    reader.child.stdout.destroy();
    const r = await reader.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });
});

describe('cat', () => {
  it('follows a put that is still running and ends when it completes', async () => {
    const key = uniqueKey('follow');
    const parts = Array.from({ length: 6 }, () => randomBytes(3000));
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    writer.child.stdin.write(parts[0]);
    await waitUntil('the put has created the file', async () => (await stateOf(redis, key))?.state === 'writing');

    const reader = start(['cat', key]);
    // cat delivers what is committed while the writer is still at work...
    await waitUntil('cat has received the first part', () => reader.stdout().length >= 2048);
    for (const part of parts.slice(1)) {
      writer.child.stdin.write(part);
      await sleep(50);
    }
    // ...and keeps waiting as long as the file is not complete.
    expect(reader.child.exitCode).toBeNull();
    expect((await stateOf(redis, key))?.state).toBe('writing');
    writer.child.stdin.end();

    const [w, r] = await Promise.all([writer.done, reader.done]);
    expect(w).toMatchObject({ code: 0, stderr: '' });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.equals(Buffer.concat(parts))).toBe(true);
  });

  it('concatenates several files, and waits for one not created yet with --wait-for-create', async () => {
    const a = uniqueKey('cat-a');
    const b = uniqueKey('cat-b');
    await put(redis, a, Buffer.from('first\n'));
    const reader = start(['cat', '--wait-for-create', '60s', a, b]);
    await waitUntil('cat has printed the first file', () => reader.stdout().length === 6);
    await put(redis, b, Buffer.from('second\n'));
    const r = await reader.done;
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.toString()).toBe('first\nsecond\n');
  });
});

describe('get of a pattern', () => {
  /** Every file under `root`, as relative paths, sorted. */
  function filesUnder(root: string): string[] {
    return (readdirSync(root, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
      .filter((e) => e.isFile())
      .map((e) => relative(root, join(e.parentPath, e.name)))
      .sort();
  }

  it("writes each file it matches into the directory by its key without the pattern's leading directories", async () => {
    const p = uniqueKey('pattern');
    const files: Record<string, string> = {
      [`${p}/logs/a.txt`]: 'a',
      [`${p}/logs/2026/b.txt`]: 'b',
      [`${p}/logs/2026/11/c.txt`]: 'c',
      [`${p}/other/d.txt`]: 'not matched',
    };
    for (const [key, content] of Object.entries(files)) await put(redis, key, Buffer.from(content));
    // The directory does not exist yet: get makes it.
    const out = join(mkdtempSync(join(dir(), 'pattern-')), 'out');
    expect(await run(['get', `${p}/logs/*`, out])).toMatchObject({ code: 0, stderr: '' });
    expect(filesUnder(out)).toEqual(['2026/11/c.txt', '2026/b.txt', 'a.txt']);
    expect(readFileSync(join(out, '2026', '11', 'c.txt'), 'utf8')).toBe('c');

    // The leading directories end at the last / before the first wildcard.
    const out2 = mkdtempSync(join(dir(), 'pattern-'));
    expect(await run(['get', `${p}/logs/20?6/*.txt`, out2])).toMatchObject({ code: 0, stderr: '' });
    expect(filesUnder(out2)).toEqual(['2026/11/c.txt', '2026/b.txt']);
  });

  it('refuses a key whose name would leave the directory, in a line each, and writes the others (exit 1)', async () => {
    const p = uniqueKey('escape');
    for (const key of [`${p}/in/ok.txt`, `${p}/in/../../escaped.txt`, `${p}/in//etc/passwd`, `${p}/in/./dot.txt`]) {
      await put(redis, key, Buffer.from(key));
    }
    const parent = mkdtempSync(join(dir(), 'escape-'));
    const out = join(parent, 'a', 'b');
    const r = await run(['get', `${p}/in/*`, out]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    const refused = /^redis-file: File ".*": not written: its name under ".*" has an empty, \. or \.\. segment/;
    for (const line of lines) expect(line).toMatch(refused);
    expect(filesUnder(parent)).toEqual(['a/b/ok.txt']);
    expect(existsSync(join(parent, 'escaped.txt'))).toBe(false);
  });

  it('a pattern that matches nothing: exit 1, one line; a pattern without a directory: a usage error', async () => {
    const p = uniqueKey('nomatch');
    const none = await run(['get', `${p}/*`, mkdtempSync(join(dir(), 'nomatch-'))]);
    expect(none.code).toBe(1);
    expect(expectOneLine(none.stderr)).toBe(
      `redis-file: get ${JSON.stringify(`${p}/*`)}: no file matches this pattern`,
    );
    const toStdout = await run(['get', `${p}/*`]);
    expect(toStdout.code).toBe(2);
    expect(toStdout.stderr).toMatch(/^error: .* is a pattern: give a directory/);
  });

  it('an escaped wildcard names the one key that holds it', async () => {
    const p = uniqueKey('escaped');
    await put(redis, `${p}/a*b`, Buffer.from('star'));
    await put(redis, `${p}/aXb`, Buffer.from('not this one'));
    const r = await run(['get', `${p}/a\\*b`]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.toString()).toBe('star');
  });
});
