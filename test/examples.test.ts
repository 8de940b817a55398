/**
 * Runs every recipe in examples/ as a child process (`node examples/<name>.mjs`), against the
 * shared test server, and checks what it prints and what it leaves in Redis, so that the recipes
 * the README shows keep working; and against a port where no Redis listens, where each must say so
 * in one line and exit 1.
 *
 * The recipes import the package by its name, which resolves to the built dist/ (`npm test` builds
 * first; beforeAll builds when dist/ is missing). Each run gets its own key prefix
 * (EXAMPLE_KEY_PREFIX) so that runs never share keys.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, stat } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, subject, subjectClientName, uniqueKey } from './helpers/clients.js';
import { collect } from './helpers/streams.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const examplesDir = join(root, 'examples');
const EXAMPLES = ['abort.mjs', 'csv-parse.mjs', 'file-to-redis.mjs', 'follow.mjs', 'redis-to-file.mjs', 'zlib.mjs'];
/** Not a recipe: the connection the recipes share. */
const HELPERS = ['connect.mjs'];
/** Longest a recipe may take before it counts as hung (they take about a second each). */
const RUN_TIMEOUT_MS = 20_000;

const redis = connect();
let tmp = '';

interface Run {
  stdout: string;
  /** stdout split into lines, without the trailing empty one. */
  lines: string[];
}

function exec(file: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [file, ...args],
      { cwd: root, env, timeout, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const why = error.killed
            ? `killed by ${error.signal} after ${timeout} ms`
            : `exit code ${error.code ?? error.signal}`;
          reject(
            new Error(
              `${file} ${args.join(' ')} failed (${why})\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
            ),
          );
          return;
        }
        resolve({ stdout, lines: stdout.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1) });
      },
    );
  });
}

/** Run `node examples/<name> ...args` with the test server and the given key prefix; it must exit 0. */
function example(name: string, args: string[], prefix: string): Promise<Run> {
  const env = {
    ...process.env,
    REDIS_URL: sharedRedisUrl(),
    REDIS_CLIENT: subjectClientName(),
    EXAMPLE_KEY_PREFIX: prefix,
  };
  return exec(join(examplesDir, name), args, env, RUN_TIMEOUT_MS);
}

interface Failed {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node examples/<name> ...args` with `env` added; it must fail (exit code not 0) within RUN_TIMEOUT_MS. */
function exampleFailing(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<Failed> {
  const file = join(examplesDir, name);
  return new Promise((resolve, reject) => {
    const all = { ...process.env, REDIS_CLIENT: subjectClientName(), ...env };
    const options = { cwd: root, env: all, timeout: RUN_TIMEOUT_MS, encoding: 'utf8' as const };
    execFile(process.execPath, [file, ...args], options, (error, stdout, stderr) => {
      if (error === null) reject(new Error(`${name} exited 0\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
      else if (error.killed)
        reject(new Error(`${name} was killed by ${error.signal}, still running after ${RUN_TIMEOUT_MS} ms`));
      else resolve({ code: typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

/** A port nobody listens on: a free one, let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A key prefix no other run uses. */
function prefix(name: string): string {
  return `${uniqueKey(name)}:`;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'redis-file-stream-examples-'));
});

afterAll(async () => {
  await closeAll();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('examples/', { timeout: 60_000 }, () => {
  it('holds exactly the recipes tested here', () => {
    expect(
      readdirSync(examplesDir)
        .filter((f) => f.endsWith('.mjs'))
        .sort(),
    ).toEqual([...EXAMPLES, ...HELPERS].sort());
  });

  it('file-to-redis then redis-to-file round-trip a 1 MiB file byte for byte', async () => {
    const p = prefix('roundtrip');
    const data = randomBytes(1024 * 1024);
    const input = join(tmp, 'roundtrip-in.bin');
    const output = join(tmp, 'roundtrip-out.bin');
    await writeFile(input, data);

    const stored = await example('file-to-redis.mjs', [input, 'backups/file.bin'], p);
    expect(stored.lines.at(-1)).toBe('ok');
    const printed = JSON.parse(
      stored.stdout.slice(stored.stdout.indexOf('{'), stored.stdout.lastIndexOf('}') + 1),
    ) as Record<string, unknown>;
    expect(printed).toMatchObject({
      key: `${p}backups/file.bin`,
      state: 'complete',
      size: data.length,
      contentEncoding: 'identity',
    });
    // The recipe stored the file under the prefixed key, as the test's own client sees it.
    expect(await stat(subject(redis), `${p}backups/file.bin`)).toMatchObject({
      state: 'complete',
      size: data.length,
      crc32: printed.crc32,
    });

    // Run it again: `overwrite: true` replaces the complete file.
    expect((await example('file-to-redis.mjs', [input, 'backups/file.bin'], p)).lines.at(-1)).toBe('ok');

    const restored = await example('redis-to-file.mjs', ['backups/file.bin', output], p);
    expect(restored.lines).toEqual([`wrote ${data.length} bytes from ${p}backups/file.bin to ${output}`, 'ok']);
    expect((await readFile(output)).equals(data)).toBe(true);
  });

  it('redis-to-file fails (exit code not 0) for a key that holds no file', async () => {
    const output = join(tmp, 'missing-out.bin');
    await expect(example('redis-to-file.mjs', ['no/such/file', output], prefix('missing'))).rejects.toThrow(
      /ERR_REDIS_FILE_NOT_FOUND/,
    );
  });

  it('follow: the reader prints the first piece before the writer has finished', async () => {
    const p = prefix('follow');
    const { lines } = await example('follow.mjs', [], p);
    expect(lines.at(-1)).toBe('ok');
    const events = lines.slice(0, -1).map((line) => line.replace(/^\s*\d+ ms {2}/, ''));
    const got = events.filter((e) => e.startsWith('reader: got '));
    expect(got).toEqual([1, 2, 3, 4].map((i) => `reader: got "piece ${i} of 4"`));
    const firstPiece = events.indexOf('reader: got "piece 1 of 4"');
    const writerFinished = events.indexOf('writer: finished');
    expect(writerFinished).toBeGreaterThan(-1);
    expect(firstPiece).toBeLessThan(writerFinished);
    expect(events).toContain('reader: end');
    // Running it again (same keys) must still follow a new file, not read the old one at once.
    const again = await example('follow.mjs', [], p);
    const againEvents = again.lines.map((line) => line.replace(/^\s*\d+ ms {2}/, ''));
    expect(againEvents.indexOf('reader: got "piece 1 of 4"')).toBeLessThan(againEvents.indexOf('writer: finished'));
  });

  it('zlib: compress/decompress, and a pre-gzipped file read raw then gunzipped', async () => {
    const p = prefix('zlib');
    const words = ['redis', 'stream', 'chunk', 'gzip', 'file', 'node', 'pipeline', 'reader', 'writer'];
    const text = Array.from(
      { length: 20_000 },
      (_, i) => `${i} ${words[i % words.length]} ${words[(i * 7) % words.length]}`,
    ).join('\n');
    const original = Buffer.from(text);
    const input = join(tmp, 'zlib-in.txt');
    await writeFile(input, original);

    const { lines } = await example('zlib.mjs', [input], p);
    const gzipped = gzipSync(original);
    const compressed = await stat(subject(redis), `${p}zlib:compressed`);
    expect(compressed.contentEncoding).toBe('gzip');
    expect(compressed.size).toBeLessThan(original.length);
    expect(lines).toEqual([
      `compress: ${original.length} bytes stored as ${compressed.size} bytes of gzip`,
      'compress: read with decompress matches the original: true',
      `pre-gzipped: ${gzipped.length} bytes stored as ${gzipped.length} bytes of gzip`,
      'pre-gzipped: raw read matches the gzip bytes: true',
      'pre-gzipped: raw read piped through gunzip matches the original: true',
      'ok',
    ]);
    // What is stored is what the lines say: real gzip of the original, and the gzip bytes as given.
    expect(
      gunzipSync(await collect(createRedisReadStream(subject(redis), `${p}zlib:compressed`))).equals(original),
    ).toBe(true);
    expect((await collect(createRedisReadStream(subject(redis), `${p}zlib:pre-gzipped`))).equals(gzipped)).toBe(true);

    // Without a path it stores its own source.
    expect((await example('zlib.mjs', [], prefix('zlib-self'))).lines.at(-1)).toBe('ok');
  });

  it('csv-parse: the printed aggregate matches the stored CSV', async () => {
    const p = prefix('csv');
    const { lines } = await example('csv-parse.mjs', [], p);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('ok');
    const printed = JSON.parse(lines[0]!) as {
      rows: number;
      byRegion: Record<string, { orders: number; quantity: number }>;
    };

    // Aggregate the stored CSV independently: read it whole, parse it in one go.
    const info = await stat(subject(redis), `${p}orders.csv`);
    expect(info).toMatchObject({ state: 'complete', contentType: 'text/csv' });
    const csv = await collect(createRedisReadStream(subject(redis), `${p}orders.csv`));
    const records = parse(csv, { columns: true }) as Record<string, string>[];
    const expected: Record<string, { orders: number; quantity: number }> = {};
    for (const record of records) {
      const region = record.region!;
      expected[region] ??= { orders: 0, quantity: 0 };
      expected[region].orders += 1;
      expected[region].quantity += Number.parseInt(record.quantity!, 10);
    }
    expect(records.length).toBeGreaterThan(0);
    expect(printed).toEqual({ rows: records.length, byRegion: expected });
    // The quoted fields (a comma, a quote, a newline) came through as single fields.
    expect(new Set(records.map((r) => r.product))).toEqual(
      new Set(['Bolt, M6', 'Nut "hex"', 'Washer', 'Screw,\nwood']),
    );
  });

  it('with no Redis at REDIS_URL, each recipe prints one line saying so and exits 1', async () => {
    const port = await closedPort();
    const url = `redis://someone:secret@127.0.0.1:${port}`;
    const args: Record<string, string[]> = {
      'file-to-redis.mjs': [join(root, 'README.md'), 'k'],
      'redis-to-file.mjs': ['k', join(tmp, 'never')],
    };
    for (const name of EXAMPLES) {
      const env = { REDIS_URL: url, EXAMPLE_KEY_PREFIX: prefix('unreachable') };
      const run = await exampleFailing(name, args[name] ?? [], env);
      expect(run.code, name).toBe(1);
      expect(run.stdout, name).toBe('');
      expect(run.stderr, name).toBe(
        `cannot reach Redis at redis://someone:***@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; ` +
          'set REDIS_URL to a running server\n',
      );
    }
  });

  it('abort: the reader fails with AbortError, and the aborted upload stats as aborted', async () => {
    const p = prefix('abort');
    const { lines } = await example('abort.mjs', [], p);
    expect(lines.at(-1)).toBe('ok');
    expect(lines).toContain('reader: AbortError: The operation was aborted');
    expect(lines).toContain('writer: AbortError: The operation was aborted');
    expect(lines).toContain('stat: aborted');
    expect(lines).toContain('reading it now: ERR_REDIS_FILE_ABORTED');
    expect((await stat(subject(redis), `${p}abort`)).state).toBe('aborted');
    // Again over the aborted file of the first run: the reader must follow the new file.
    const withoutData = (all: string[]): string[] => all.filter((line) => !line.startsWith('reader got '));
    expect(withoutData((await example('abort.mjs', [], p)).lines)).toEqual(withoutData(lines));
  });
});
