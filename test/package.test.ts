/**
 * The built package as its consumers load it: by name, through the "exports" map of package.json,
 * from an ES module (`import`, resolved to dist/esm) and from CommonJS (`require`, resolved to
 * dist/cjs). Each check runs in a child `node` process whose cwd is the repository root, so that
 * `redis-file-stream` resolves to this package itself.
 *
 * These tests exercise dist/, not src/: run `npm run build` after changing src/ (beforeAll builds
 * only when dist/ is missing).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';
import { bytes, get, put } from './helpers/streams.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every public runtime export (types are checked by test-d/), with what it is. */
const PUBLIC_EXPORTS: Record<string, 'function' | 'object'> = {
  createRedisWriteStream: 'function',
  createRedisReadStream: 'function',
  stat: 'function',
  list: 'function',
  remove: 'function',
  expire: 'function',
  rename: 'function',
  lines: 'function',
  crcImplementation: 'function',
  sendFiles: 'function',
  receiveFiles: 'function',
  closeChannel: 'function',
  removeChannel: 'function',
  RedisFileError: 'function',
  ErrorCodes: 'object',
  RedisWriteStream: 'function',
  RedisReadStream: 'function',
};
const EXPORT_NAMES = Object.keys(PUBLIC_EXPORTS).sort();

/** Run `node <args>` in the repository root and return its stdout. Throws with stderr on failure. */
function node(args: string[], env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function esm(code: string, env?: Record<string, string>): string {
  return node(['--input-type=module', '-e', code], env);
}

function cjs(code: string, env?: Record<string, string>): string {
  return node(['--input-type=commonjs', '-e', code], env);
}

/** The last line of a child's output, parsed (anything a child logs before it is ignored). */
function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

describe('the built package, loaded by name', () => {
  it('exports the complete public API to ES module consumers', () => {
    const out = esm("import * as m from 'redis-file-stream'; console.log(JSON.stringify(Object.keys(m).sort()))");
    expect(lastJson(out)).toEqual(EXPORT_NAMES);
  });

  it('exports the complete public API to CommonJS consumers', () => {
    const out = cjs("console.log(JSON.stringify(Object.keys(require('redis-file-stream')).sort()))");
    expect(lastJson(out)).toEqual(EXPORT_NAMES);
  });

  it('exports the same names, of the same kinds, to both', () => {
    const kinds = 'JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v])))';
    const fromEsm = lastJson(esm(`import * as m from 'redis-file-stream'; console.log(${kinds})`));
    const fromCjs = lastJson(cjs(`const m = require('redis-file-stream'); console.log(${kinds})`));
    expect(fromEsm).toEqual(PUBLIC_EXPORTS);
    expect(fromCjs).toEqual(fromEsm);
  });

  it('resolves import to dist/esm and require to dist/cjs', () => {
    const imported = esm("console.log(JSON.stringify(import.meta.resolve('redis-file-stream')))");
    const required = cjs("console.log(JSON.stringify(require.resolve('redis-file-stream')))");
    expect(fileURLToPath(lastJson<string>(imported))).toBe(join(root, 'dist/esm/index.js'));
    expect(lastJson<string>(required)).toBe(join(root, 'dist/cjs/index.js'));
  });

  it('exposes the same error codes to both', () => {
    const fromEsm = lastJson(
      esm("import { ErrorCodes } from 'redis-file-stream'; console.log(JSON.stringify(ErrorCodes))"),
    );
    const fromCjs = lastJson(cjs("console.log(JSON.stringify(require('redis-file-stream').ErrorCodes))"));
    expect(fromCjs).toEqual(fromEsm);
    expect(Object.values(fromEsm as Record<string, string>).sort()).toEqual(
      [
        'ERR_REDIS_FILE_NOT_FOUND',
        'ERR_REDIS_FILE_EXISTS',
        'ERR_REDIS_FILE_ABORTED',
        'ERR_REDIS_FILE_CORRUPT',
        'ERR_REDIS_FILE_TIMEOUT',
        'ERR_REDIS_FILE_RANGE',
        'ERR_REDIS_FILE_FORMAT',
        'ERR_REDIS_FILE_REDIS',
        'ERR_REDIS_FILE_DECODE',
        'ERR_REDIS_FILE_LINE_TOO_LONG',
      ].sort(),
    );
  });
});

describe('round trip through the built package', () => {
  const redis = connect();
  afterAll(closeAll);

  /**
   * The body of a child process (`rfs` and `Redis` are in scope): write DATA_HEX at KEY in uneven
   * writes and small chunks, read it back, read OTHER_KEY (written by the parent through src/),
   * and read a missing key, which must fail with a RedisFileError of this build.
   */
  const body = `
    const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 2 });
    redis.on('error', () => {});
    const readAll = async (key) => {
      const parts = [];
      for await (const part of rfs.createRedisReadStream(redis, key)) parts.push(part);
      return Buffer.concat(parts);
    };
    try {
      const data = Buffer.from(process.env.DATA_HEX, 'hex');
      await pipeline(
        Readable.from([data.subarray(0, 1), data.subarray(1, 6), data.subarray(6)]),
        rfs.createRedisWriteStream(redis, process.env.KEY, { chunkSize: 4 }),
      );
      const back = await readAll(process.env.KEY);
      const s = await rfs.stat(redis, process.env.KEY);
      const other = await readAll(process.env.OTHER_KEY);
      let missing;
      try {
        await readAll(process.env.KEY + ':missing');
      } catch (err) {
        missing = { isRedisFileError: err instanceof rfs.RedisFileError, code: err.code };
      }
      console.log(JSON.stringify({ back: back.toString('hex'), state: s.state, size: s.size, chunks: s.chunks, other: other.toString('hex'), missing }));
    } finally {
      await redis.quit();
    }
  `;
  const programs = {
    'a CommonJS': {
      run: cjs,
      code: `
        const { pipeline } = require('node:stream/promises');
        const { Readable } = require('node:stream');
        const { Redis } = require('ioredis');
        const rfs = require('redis-file-stream');
        (async () => { ${body} })().catch((err) => { console.error(err); process.exitCode = 1; });
      `,
    },
    'an ES module': {
      run: esm,
      code: `
        import { pipeline } from 'node:stream/promises';
        import { Readable } from 'node:stream';
        import { Redis } from 'ioredis';
        import * as rfs from 'redis-file-stream';
        ${body}
      `,
    },
  };

  for (const [kind, { run, code }] of Object.entries(programs)) {
    it(`writes and reads back a small file from ${kind} consumer, in the format src/ reads and writes`, async () => {
      const key = uniqueKey(`pkg-${kind.includes('CommonJS') ? 'cjs' : 'esm'}`);
      const otherKey = `${key}:from-src`;
      const data = bytes(11, 42);
      const other = bytes(9, 43);
      await put(redis, otherKey, other, { chunkSize: 4 });

      const out = run(code, {
        REDIS_URL: sharedRedisUrl(),
        KEY: key,
        OTHER_KEY: otherKey,
        DATA_HEX: data.toString('hex'),
      });

      expect(lastJson(out)).toEqual({
        back: data.toString('hex'),
        state: 'complete',
        size: 11,
        chunks: 3,
        other: other.toString('hex'),
        missing: { isRedisFileError: true, code: 'ERR_REDIS_FILE_NOT_FOUND' },
      });
      // What the built package stored reads back through src/ too.
      expect((await get(redis, key)).equals(data)).toBe(true);
      expect(await stat(redis, key)).toMatchObject({ state: 'complete', size: 11, chunks: 3, chunkSize: 4 });
    });
  }
});
