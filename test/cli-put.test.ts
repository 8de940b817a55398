/**
 * `redis-file put`: a file or standard input stored at a key, with the write options, --overwrite,
 * --prefix and --gzip (read back with get); several files under a key prefix; a directory with -r.
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import { expectOneLine, run, start, storedKeys, useTempDir } from './helpers/cli.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { get } from './helpers/streams.js';

const redis = connect();
const dir = useTempDir();
afterAll(closeAll);

describe('put and get', () => {
  it('round-trips a 3 MiB file byte for byte, to a file and to stdout', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const src = join(dir(), 'random.bin');
    writeFileSync(src, data);
    const key = uniqueKey('file');

    const stored = await run(['put', src, key]);
    expect(stored).toMatchObject({ code: 0, stderr: '' });
    expect(stored.stdout.length).toBe(0);

    const out = join(dir(), 'random.out');
    const toFile = await run(['get', key, out]);
    expect(toFile).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(out).equals(data)).toBe(true);

    const toStdout = await run(['get', key]);
    expect(toStdout).toMatchObject({ code: 0, stderr: '' });
    expect(toStdout.stdout.equals(data)).toBe(true);

    const s = await run(['stat', key, '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout.toString())).toMatchObject({
      key,
      state: 'complete',
      size: data.length,
      chunkSize: 256 * 1024,
      contentEncoding: 'identity',
    });
  });

  it('round-trips standard input, with the write options', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const key = uniqueKey('stdin');
    const stored = await run(
      [
        'put',
        '-',
        key,
        '--chunk-size',
        '64k',
        '--ttl',
        '1h',
        '--content-type',
        'application/x-test',
        '--meta',
        'a=1',
        '--meta',
        'b=x=y',
      ],
      {
        input: data,
      },
    );
    expect(stored).toMatchObject({ code: 0, stderr: '' });
    const got = await run(['get', key, '-']);
    expect(got.code).toBe(0);
    expect(got.stdout.equals(data)).toBe(true);
    const s = await stat(redis, key);
    expect(s).toMatchObject({
      state: 'complete',
      size: data.length,
      chunkSize: 64 * 1024,
      contentType: 'application/x-test',
      metadata: { a: '1', b: 'x=y' },
    });
    expect(s.ttl).toBeGreaterThan(0);
    expect(s.ttl).toBeLessThanOrEqual(3600);
  });

  it('refuses to replace a file without --overwrite, and replaces it with', async () => {
    const key = uniqueKey('overwrite');
    expect((await run(['put', '-', key], { input: 'first' })).code).toBe(0);
    const refused = await run(['put', '-', key], { input: 'second' });
    expect(refused.code).toBe(1);
    expect(expectOneLine(refused.stderr)).toContain(JSON.stringify(key));
    expect((await run(['get', key])).stdout.toString()).toBe('first');
    expect((await run(['put', '--overwrite', '-', key], { input: 'second' })).code).toBe(0);
    expect((await run(['get', key])).stdout.toString()).toBe('second');
  });

  it('put - that fails while its input is still open exits by itself: it gives up standard input', async () => {
    const key = uniqueKey('stdin-open');
    expect((await run(['put', '-', key], { input: 'first\n' })).code).toBe(0);
    // The producer writes on and never closes the pipe. With REDIS_FILE_DEBUG, a process that the
    // pipe held up after its last line says so when the fallback timer ends it.
    const running = start(['put', '-', key], { env: { REDIS_FILE_DEBUG: '1' } });
    running.child.stdin.write('second\n');
    const r = await running.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_REDIS_FILE_EXISTS/);
    expect(r.stderr).not.toMatch(/still running after the end/);
  });

  it('honours --prefix', async () => {
    const key = uniqueKey('prefix');
    expect((await run(['put', '--prefix', 'cli-test:', '-', key], { input: 'x' })).code).toBe(0);
    expect((await run(['stat', key])).code).toBe(1);
    const s = await run(['stat', key, '--prefix', 'cli-test:', '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout.toString())).toMatchObject({ key, size: 1 });
    expect((await run(['rm', '--prefix', 'cli-test:', key])).code).toBe(0);
  });
});

describe('gzip', () => {
  const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i},${i * 7},value ${i % 13}\n`).join(''));

  it('put --gzip compresses on the way in; get --decompress gives back the input', async () => {
    const src = join(dir(), 'text.csv');
    writeFileSync(src, text);
    const key = uniqueKey('gzip-in');
    expect((await run(['put', '--gzip', src, key])).code).toBe(0);
    const s = await stat(redis, key);
    expect(s.contentEncoding).toBe('gzip');
    expect(s.size).toBeLessThan(text.length);
    const back = await run(['get', '--decompress', key]);
    expect(back.code).toBe(0);
    expect(back.stdout.equals(text)).toBe(true);
    const raw = await run(['get', key]);
    expect(raw.stdout.length).toBe(s.size);
  });

  it('a .gz is stored byte for byte and recognised as gzip', async () => {
    const gz = gzipSync(text);
    const src = join(dir(), 'text.csv.gz');
    writeFileSync(src, gz);
    const key = uniqueKey('gz-file');
    expect((await run(['put', src, key])).code).toBe(0);
    const back = await run(['get', key]);
    expect(back.code).toBe(0);
    expect(back.stdout.equals(gz)).toBe(true);
    const human = await run(['stat', key]);
    expect(human.stdout.toString()).toMatch(/^encoding:\s+gzip$/m);
    expect((await run(['cat', '-d', key])).stdout.equals(text)).toBe(true);
  });
});

describe('several files, and a directory', () => {
  /** A directory of files named by their contents: `files` maps relative paths to contents. */
  function tree(name: string, files: Record<string, string>): string {
    const root = mkdtempSync(join(dir(), `${name}-`));
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    return root;
  }

  it('a key ending in / stores a file under it by its base name; several files go under such a prefix', async () => {
    const src = tree('several', { 'a.log': 'a', 'b.log': 'b', 'c.csv': 'c' });
    const prefix = `${uniqueKey('several')}/`;
    expect(await run(['put', join(src, 'a.log'), prefix])).toMatchObject({ code: 0, stderr: '' });
    expect(await run(['put', join(src, 'b.log'), join(src, 'c.csv'), prefix])).toMatchObject({ code: 0, stderr: '' });
    expect(await storedKeys(redis, `${prefix}*`)).toEqual([`${prefix}a.log`, `${prefix}b.log`, `${prefix}c.csv`]);
    for (const name of ['a.log', 'b.log', 'c.csv'])
      expect((await get(redis, `${prefix}${name}`)).toString()).toBe(name[0]);
  });

  it.each([
    ['a prefix that does not end in /', (src: string, key: string) => [join(src, 'a.log'), join(src, 'b.log'), key]],
    [
      'two files of the same name',
      (src: string, key: string) => [join(src, 'a.log'), join(src, 'sub', 'a.log'), `${key}/`],
    ],
    ['standard input among several', (src: string, key: string) => [join(src, 'a.log'), '-', `${key}/`]],
    ['standard input under a prefix', (_: string, key: string) => ['-', `${key}/`]],
    ['--recursive with two directories', (src: string, key: string) => ['-r', src, join(src, 'sub'), key]],
  ])('%s is a usage error, and nothing is stored', async (_, args) => {
    const src = tree('usage', { 'a.log': 'a', 'b.log': 'b', 'sub/a.log': 'a' });
    const key = uniqueKey('usage');
    const r = await run(['put', ...args(src, key)], { input: 'x' });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^error: /);
    expect(await storedKeys(redis, `${key}*`)).toEqual([]);
  });

  it('several files: a missing one fails the command before anything is stored', async () => {
    const src = tree('missing', { 'a.log': 'a' });
    const prefix = `${uniqueKey('missing')}/`;
    const r = await run(['put', join(src, 'a.log'), join(src, 'nope.log'), prefix]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toContain('nope.log');
    expect(await storedKeys(redis, `${prefix}*`)).toEqual([]);
  });

  it('several files, one already stored: a line for it, the others stored, exit 1', async () => {
    const src = tree('partly', { 'a.log': 'a', 'b.log': 'b', 'c.log': 'c' });
    const prefix = `${uniqueKey('partly')}/`;
    expect((await run(['put', join(src, 'b.log'), prefix])).code).toBe(0);
    const r = await run(['put', join(src, 'a.log'), join(src, 'b.log'), join(src, 'c.log'), prefix]);
    expect(r.code).toBe(1);
    const line = expectOneLine(r.stderr);
    expect(line).toContain(
      `File ${JSON.stringify(`${prefix}b.log`)}: a complete file is stored at this key; use -f/--overwrite`,
    );
    expect(await storedKeys(redis, `${prefix}*`)).toEqual([`${prefix}a.log`, `${prefix}b.log`, `${prefix}c.log`]);
  });

  it('-r stores the files of a directory at the prefix + their relative paths; links to files count, the rest is skipped', async () => {
    const src = tree('recursive', {
      'index.html': 'index',
      'css/site.css': 'css',
      'img/logo/small.png': 'png',
      'empty/.keep': '',
    });
    symlinkSync(join(src, 'index.html'), join(src, 'home.html'));
    symlinkSync(src, join(src, 'loop'));
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const key = uniqueKey('recursive');
    // A / is added to a prefix that has none.
    const r = await run(['put', '--recursive', src, key]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n').sort();
    expect(lines).toEqual([
      `redis-file: skipped ${join(src, 'loop')}: not a regular file (a link to a directory, or to nothing)`,
      `redis-file: skipped ${join(src, 'pipe')}: not a regular file`,
    ]);
    const expected = ['css/site.css', 'empty/.keep', 'home.html', 'img/logo/small.png', 'index.html'];
    expect(await storedKeys(redis, `${key}/*`)).toEqual(expected.map((path) => `${key}/${path}`));
    expect((await get(redis, `${key}/img/logo/small.png`)).toString()).toBe('png');
    expect((await get(redis, `${key}/home.html`)).toString()).toBe('index');
  });

  it('-r with a file whose name is not UTF-8: exit 1 before anything is stored, one line naming it', async () => {
    const src = tree('not-utf8', { 'a.log': 'a', 'b.log': 'b' });
    // fs takes a Buffer path as raw bytes: a name a key cannot hold.
    writeFileSync(Buffer.concat([Buffer.from(`${src}/bad`), Buffer.from([0xff]), Buffer.from('.log')]), 'x');
    const key = uniqueKey('not-utf8');
    const r = await run(['put', '-r', src, key]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toMatch(/cannot store .*bad\uFFFD\.log: its name is not UTF-8/);
    expect(await storedKeys(redis, `${key}/*`)).toEqual([]);
  });

  it('a directory without -r: exit 1, one line that names -r/--recursive', async () => {
    const src = tree('no-r', { 'a.log': 'a' });
    const r = await run(['put', src, uniqueKey('no-r')]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toMatch(/is a directory \(-r\/--recursive stores the files of a directory\)/);
  });
});
