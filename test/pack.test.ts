/**
 * The package as a user gets it: `npm pack` of a copy of the sources without dist/ (a fresh clone:
 * `prepack` must build), the tarball installed with `npm install` into a scratch project next to
 * ioredis (the newest 6.x, the devDependency pin, and under another name the oldest 6.x) and
 * TypeScript, then used from that project: ESM import, CJS require, strict `tsc` of a consumer
 * under node16 and bundler resolution, the `redis-file` binary, and `instanceof RedisFileError`
 * across the two builds. One pack and one install per run, shared by the checks.
 *
 * package.test.ts covers the export map and the public names of the repository's own dist/; this
 * file covers what only the tarball and a separate install can show. The first describe block
 * checks the cross-build instanceof in this process, against src/ and the built dist/cjs (run
 * `npm run build` after changing src/).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFromSources } from '../scripts/lib/pack.mjs';
import { ErrorCodes, RedisFileError } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';
import { put } from './helpers/streams.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies: Record<string, string>;
};

/** The newest ioredis 6.x when the devDependency was last bumped: what `npm i ioredis@6` gives. */
const NEWEST_IOREDIS = pkg.devDependencies.ioredis!;
/** The lowest version the peer range `^6` admits. */
const OLDEST_IOREDIS = '6.0.0';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command; resolves with its output whatever its exit code (a signal counts as failure). */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    const options = {
      cwd,
      env: { ...process.env, ...env },
      encoding: 'utf8' as const,
      timeout: 240_000,
      maxBuffer: 2 ** 24,
    };
    execFile(command, args, options, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}\n${error.message}` : stderr });
    });
  });
}

/** Run a command that must succeed; its stdout. */
async function ok(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(command, args, cwd, env);
  if (r.code !== 0) {
    const output = `--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${r.code}\n${output}`);
  }
  return r.stdout;
}

/** The last line of a child's output, parsed. */
function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

describe('instanceof RedisFileError across copies of the class, in this process', () => {
  // src/ as vitest loads it (an ES module) and the built CommonJS: two classes, as in a process
  // where an ES module and a CommonJS dependency both load the package.
  const cjs = createRequire(import.meta.url)(join(root, 'dist/cjs/index.js')) as typeof import('../src/index.js');

  it('an error of either class is an instance of both, with its name and code', () => {
    expect(cjs.RedisFileError).not.toBe(RedisFileError);
    const fromCjs = new cjs.RedisFileError(ErrorCodes.NOT_FOUND, 'File "k": no file', { key: 'k' });
    const fromEsm = new RedisFileError(ErrorCodes.RANGE, 'File "k": out of range', { key: 'k' });
    for (const err of [fromCjs, fromEsm]) {
      expect(err instanceof RedisFileError).toBe(true);
      expect(err instanceof cjs.RedisFileError).toBe(true);
      expect(err instanceof Error).toBe(true);
      expect(err.name).toBe('RedisFileError');
    }
    expect(fromCjs).toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND', key: 'k', message: 'File "k": no file' });
    expect(fromEsm).toMatchObject({ code: 'ERR_REDIS_FILE_RANGE', key: 'k' });
  });

  it('other values are not instances', () => {
    const lookalike = Object.assign(new Error('m'), { name: 'RedisFileError', code: ErrorCodes.NOT_FOUND });
    const others = [
      lookalike,
      new TypeError('m'),
      { code: ErrorCodes.NOT_FOUND },
      null,
      undefined,
      'RedisFileError',
      42,
    ];
    for (const value of others) {
      expect(value instanceof RedisFileError).toBe(false);
      expect(value instanceof cjs.RedisFileError).toBe(false);
    }
  });

  it('the mark is not an own property: not listed, not serialised', () => {
    const err = new RedisFileError(ErrorCodes.ABORTED, 'm', { key: 'k' });
    expect(Object.keys(err)).toEqual(['code', 'key']);
    expect(Reflect.ownKeys(err).filter((k) => typeof k === 'symbol')).toEqual([]);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: ErrorCodes.ABORTED, key: 'k' });
  });

  it('a subclass keeps the ordinary prototype check', () => {
    class Special extends RedisFileError {}
    const special = new Special(ErrorCodes.CORRUPT, 'm');
    expect(special instanceof Special).toBe(true);
    expect(special instanceof RedisFileError).toBe(true);
    expect(special instanceof cjs.RedisFileError).toBe(true);
    expect(new RedisFileError(ErrorCodes.CORRUPT, 'm') instanceof Special).toBe(false);
    expect(new cjs.RedisFileError(ErrorCodes.CORRUPT, 'm') instanceof Special).toBe(false);
  });
});

describe('the packed tarball, installed into a scratch project', { timeout: 120_000 }, () => {
  const redis = connect();
  let tmp = '';
  let app = '';
  let tarballFiles: string[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'redis-file-stream-pack-'));
    // A fresh clone: the sources, no dist/ (`prepack` must build).
    const tarball = await packFromSources(root, tmp);
    expect(basename(tarball)).toBe(`redis-file-stream-${pkg.version}.tgz`);
    tarballFiles = (await ok('tar', ['-tzf', tarball], tmp)).split('\n').filter(Boolean).sort();

    app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(
      join(app, 'package.json'),
      `${JSON.stringify({ name: 'scratch', version: '1.0.0', private: true })}\n`,
    );
    await ok(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        tarball,
        `ioredis@${NEWEST_IOREDIS}`,
        `ioredis-oldest@npm:ioredis@${OLDEST_IOREDIS}`,
        `typescript@${pkg.devDependencies.typescript}`,
        `@types/node@${pkg.devDependencies['@types/node']}`,
      ],
      app,
    );
    await writeConsumer(app);
  }, 300_000);

  afterAll(async () => {
    await closeAll();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('ships the build of both formats, the CLI, the license and the readme, and no sources', () => {
    const built = ['esm/index.js', 'esm/index.d.ts', 'esm/cli/main.js', 'cjs/index.js', 'cjs/index.d.ts'];
    for (const file of built) expect(tarballFiles).toContain(`package/dist/${file}`);
    const others = tarballFiles.filter((f) => !f.startsWith('package/dist/'));
    expect(others).toEqual(['package/LICENSE', 'package/README.md', 'package/package.json']);
  });

  it('takes ioredis as a peer: one ioredis in the project, none nested under the package', async () => {
    // Each client library is an optional peer: a project installs the one it uses.
    expect(pkg.peerDependencies).toEqual({ ioredis: '^6', iovalkey: '^0.4', redis: '^6' });
    expect(pkg.peerDependenciesMeta).toEqual({
      ioredis: { optional: true },
      iovalkey: { optional: true },
      redis: { optional: true },
    });
    expect(pkg.dependencies ?? {}).not.toHaveProperty('ioredis');
    const installed = JSON.parse(await ok('npm', ['ls', 'ioredis', '--all', '--json'], app)) as {
      dependencies: Record<string, { version: string; dependencies?: Record<string, { version: string }> }>;
    };
    expect(installed.dependencies.ioredis?.version).toBe(NEWEST_IOREDIS);
    // The package's own ioredis is the project's (deduplicated), not a copy of its own.
    const own = installed.dependencies['redis-file-stream']?.dependencies?.ioredis;
    expect(own).toMatchObject({ version: NEWEST_IOREDIS });
    const nested = await readdir(join(app, 'node_modules/redis-file-stream/node_modules')).catch(() => []);
    expect(nested).not.toContain('ioredis');
  });

  it('asks for its own dependencies by caret range, so that a project shares its copies and gets their fixes', () => {
    const own = { ...pkg.dependencies, ...pkg.optionalDependencies };
    expect(Object.keys(own).sort()).toEqual(['@node-rs/crc32', 'cli-progress', 'commander']);
    for (const [name, range] of Object.entries(own)) expect(range, name).toMatch(/^\^\d+\.\d+\.\d+$/);
  });

  it("an ES module imports it and stores a file through the project's ioredis", async () => {
    const key = uniqueKey('pack-esm');
    const out = await ok(process.execPath, ['esm.mjs'], app, { REDIS_URL: sharedRedisUrl(), KEY: key });
    expect(lastJson(out)).toEqual({
      resolved: join(app, 'node_modules/redis-file-stream/dist/esm/index.js'),
      state: 'complete',
      size: 11,
    });
  });

  it('a CommonJS module requires it and reads back what the ES module build stored', async () => {
    const key = uniqueKey('pack-cjs');
    await put(redis, key, Buffer.from('from src/, read by the CJS build'));
    const out = await ok(process.execPath, ['cjs.cjs'], app, { REDIS_URL: sharedRedisUrl(), KEY: key });
    expect(lastJson(out)).toEqual({
      resolved: join(app, 'node_modules/redis-file-stream/dist/cjs/index.js'),
      text: 'from src/, read by the CJS build',
    });
  });

  it('instanceof RedisFileError holds across the ES module and CommonJS builds, both ways', async () => {
    const out = await ok(process.execPath, ['errors.mjs'], app, {
      REDIS_URL: sharedRedisUrl(),
      KEY: uniqueKey('pack-none'),
    });
    const failure = {
      name: 'RedisFileError',
      code: 'ERR_REDIS_FILE_NOT_FOUND',
      instanceOfEsm: true,
      instanceOfCjs: true,
      instanceOfError: true,
    };
    expect(lastJson(out)).toEqual({ distinctClasses: true, fromEsm: failure, fromCjs: failure });
  });

  const configs = [
    ['node16 resolution (module node16), from .mts and .cts files', 'tsconfig.node16.json'],
    ['bundler resolution (module esnext)', 'tsconfig.bundler.json'],
    [`node16 resolution with the oldest ioredis 6.x (${OLDEST_IOREDIS})`, 'tsconfig.oldest.json'],
  ] as const;
  for (const [what, config] of configs) {
    it(`a consumer passes strict tsc under ${what}`, async () => {
      const tsc = join(app, 'node_modules/typescript/bin/tsc');
      const r = await run(process.execPath, [tsc, '-p', config, '--listFiles'], app);
      expect(
        r.stdout
          .split('\n')
          .filter((line) => !line.startsWith('/'))
          .join('\n'),
        'tsc errors',
      ).toBe('');
      expect(r.code).toBe(0);
      // The consumer was checked against the ioredis this config is about, and only that one.
      const ioredisFiles = r.stdout.split('\n').filter((f) => /\/node_modules\/ioredis(-oldest)?\//.test(f));
      const expected = config === 'tsconfig.oldest.json' ? '/node_modules/ioredis-oldest/' : '/node_modules/ioredis/';
      expect(ioredisFiles.length).toBeGreaterThan(0);
      expect(ioredisFiles.filter((f) => !f.includes(expected))).toEqual([]);
    });
  }

  it('the redis-file binary runs through npx', async () => {
    // @node-rs/crc32, an optional dependency, is installed with the package and loads here.
    expect(await ok('npx', ['--no', '--', 'redis-file', '--version'], app)).toBe(
      `${pkg.version} (CRC-32 by @node-rs/crc32)\n`,
    );
    expect(await ok('npx', ['--no', '--', 'redis-file', '--help'], app)).toMatch(/^Usage: redis-file /);
  });
});

/** The scratch project's programs and TypeScript configurations. */
async function writeConsumer(dir: string): Promise<void> {
  // Type-checked only: every public entry point a first program uses, with an ioredis Redis and Cluster.
  const consumer = `
    import { once } from 'node:events';
    import { Cluster, Redis } from 'ioredis';
    import {
      createRedisReadStream,
      createRedisWriteStream,
      type FileStat,
      RedisFileError,
      type RedisReadStream,
      type RedisWriteStream,
      stat,
    } from 'redis-file-stream';

    export async function use(redis: Redis, cluster: Cluster): Promise<number> {
      const writer: RedisWriteStream = createRedisWriteStream(redis, 'k', { chunkSize: 1024, metadata: { a: 'b' } });
      writer.end(Buffer.from('x'));
      await once(writer, 'finish');
      const reader: RedisReadStream = createRedisReadStream(cluster, 'k', { start: 0, follow: false });
      reader.resume();
      try {
        const s: FileStat = await stat(redis, 'k', { prefix: 'rfs:' });
        return s.size + (await stat(cluster, 'k')).chunks;
      } catch (err) {
        if (err instanceof RedisFileError && err.code === 'ERR_REDIS_FILE_NOT_FOUND') return -1;
        throw err;
      }
    }
  `;
  // Node16: an .mts is an ES module (the "import" types), a .cts CommonJS (the "require" types).
  for (const file of ['consumer.mts', 'consumer.cts', 'consumer.ts']) await writeFile(join(dir, file), consumer);
  const strict = { strict: true, target: 'es2022', lib: ['es2022'], types: ['node'], noEmit: true, skipLibCheck: true };
  const configs: Record<string, unknown> = {
    'tsconfig.node16.json': {
      compilerOptions: { ...strict, module: 'node16', moduleResolution: 'node16' },
      files: ['consumer.mts', 'consumer.cts'],
    },
    'tsconfig.bundler.json': {
      compilerOptions: { ...strict, module: 'esnext', moduleResolution: 'bundler' },
      files: ['consumer.ts'],
    },
    // Every `ioredis` in the program, the package's declarations included, resolved to the oldest 6.x.
    'tsconfig.oldest.json': {
      extends: './tsconfig.node16.json',
      compilerOptions: { paths: { ioredis: ['./node_modules/ioredis-oldest/built/index.d.ts'] } },
    },
  };
  for (const [file, config] of Object.entries(configs)) {
    await writeFile(join(dir, file), `${JSON.stringify(config, null, 2)}\n`);
  }

  await writeFile(
    join(dir, 'esm.mjs'),
    `
    import { pipeline } from 'node:stream/promises';
    import { Readable } from 'node:stream';
    import { Redis } from 'ioredis';
    import { createRedisWriteStream, stat } from 'redis-file-stream';
    const redis = new Redis(process.env.REDIS_URL);
    try {
      const source = Readable.from([Buffer.from('hello '), Buffer.from('world')]);
      await pipeline(source, createRedisWriteStream(redis, process.env.KEY));
      const { state, size } = await stat(redis, process.env.KEY);
      const resolved = new URL(import.meta.resolve('redis-file-stream')).pathname;
      console.log(JSON.stringify({ resolved, state, size }));
    } finally {
      await redis.quit();
    }
  `,
  );
  await writeFile(
    join(dir, 'cjs.cjs'),
    `
    const { Redis } = require('ioredis');
    const { createRedisReadStream } = require('redis-file-stream');
    const redis = new Redis(process.env.REDIS_URL);
    (async () => {
      const parts = [];
      for await (const part of createRedisReadStream(redis, process.env.KEY)) parts.push(part);
      const text = Buffer.concat(parts).toString();
      console.log(JSON.stringify({ resolved: require.resolve('redis-file-stream'), text }));
    })().then(
      () => redis.quit(),
      (err) => { console.error(err); process.exitCode = 1; redis.disconnect(); },
    );
  `,
  );
  // Both builds in one process: each one's NOT_FOUND, checked against both classes.
  await writeFile(
    join(dir, 'errors.mjs'),
    `
    import { createRequire } from 'node:module';
    import { Redis } from 'ioredis';
    import * as esm from 'redis-file-stream';
    const cjs = createRequire(import.meta.url)('redis-file-stream');
    const redis = new Redis(process.env.REDIS_URL);
    const describe = (err) => ({
      name: err.name,
      code: err.code,
      instanceOfEsm: err instanceof esm.RedisFileError,
      instanceOfCjs: err instanceof cjs.RedisFileError,
      instanceOfError: err instanceof Error,
    });
    try {
      const fromEsm = await esm.stat(redis, process.env.KEY).catch(describe);
      const fromCjs = await cjs.stat(redis, process.env.KEY).catch(describe);
      console.log(JSON.stringify({ distinctClasses: esm.RedisFileError !== cjs.RedisFileError, fromEsm, fromCjs }));
    } finally {
      await redis.quit();
    }
  `,
  );
}
