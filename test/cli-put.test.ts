/**
 * `redis-file put`: a file or standard input stored at a key, with the write options, --overwrite,
 * --prefix and --gzip (read back with get).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { expectOneLine, run, useTempDir } from './helpers/cli.js';

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
    expect(JSON.parse(s.stdout.toString())).toMatchObject({ key, state: 'complete', size: data.length, chunkSize: 256 * 1024, contentEncoding: 'identity' });
  });

  it('round-trips standard input, with the write options', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const key = uniqueKey('stdin');
    const stored = await run(['put', '-', key, '--chunk-size', '64k', '--ttl', '1h', '--content-type', 'application/x-test', '--meta', 'a=1', '--meta', 'b=x=y'], {
      input: data,
    });
    expect(stored).toMatchObject({ code: 0, stderr: '' });
    const got = await run(['get', key, '-']);
    expect(got.code).toBe(0);
    expect(got.stdout.equals(data)).toBe(true);
    const s = await stat(redis, key);
    expect(s).toMatchObject({ state: 'complete', size: data.length, chunkSize: 64 * 1024, contentType: 'application/x-test', metadata: { a: '1', b: 'x=y' } });
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
