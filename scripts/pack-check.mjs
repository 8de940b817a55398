#!/usr/bin/env node
// The package as a user installs it, once per client library (part of `npm run test:package`).
//
// Packs the package (`npm pack`, which builds it first) from a copy of the sources, so that the
// checkout's dist/ stays as it is (scripts/lib/pack.mjs), checks the tarball's types with Are the
// Types Wrong? (attw, node16 profile), then makes a scratch project in a temp dir per client
// library (node-redis `redis`, `ioredis`, `iovalkey`) that installs the tarball and that one client
// only (from the npm cache when it holds everything, else from the registry), and checks in each that:
//   - no other client library was installed (they are optional peers, and the package imports none);
//   - an ES module script and a CommonJS script write a small file through that client and read it
//     back, against a private redis-server on a free port (scripts/lib/redis-launcher.mjs);
//   - a TypeScript file that passes the client, standalone and cluster, to the package without a
//     cast compiles with `tsc --noEmit`, strict, without skipLibCheck, both as an ES module (.ts)
//     and as CommonJS (.cts).
//
// Options: --keep   leave the temp dir (printed) in place, to look into a failure.
// Exit code: 0 when every check passed; 1 otherwise, each failure printed with the output of the
// command that failed.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { packFromSources } from './lib/pack.mjs';
import { startRedis } from './lib/redis-launcher.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const { values: args } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });

/** The installed packages of each client library; every project must hold its own and none of the others'. */
const ALL_CLIENT_PACKAGES = ['ioredis', 'iovalkey', 'redis', '@redis/client'];

/**
 * One scratch project per client library: what it installs, and the source lines that differ
 * between them (connecting a client in the scripts; a client and a cluster in the type check).
 */
const PROJECTS = [
  {
    name: 'node-redis',
    install: ['redis'],
    own: ['redis', '@redis/client'],
    esm: "import { createClient } from 'redis';",
    cjs: "const { createClient } = require('redis');",
    connect: "const client = createClient({ url });\n  client.on('error', () => {});\n  await client.connect();",
    close: 'await client.close();',
    types: [
      "import { createClient, createCluster, RESP_TYPES } from 'redis';",
      '',
      "const client = createClient({ url: 'redis://127.0.0.1:6379' });",
      "const resp2 = createClient({ url: 'redis://127.0.0.1:6379', RESP: 2 });",
      'const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });',
      "const cluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] });",
      'const clients = [client, resp2, buffers, cluster] as const;',
    ],
  },
  {
    name: 'ioredis',
    install: ['ioredis'],
    own: ['ioredis'],
    esm: "import { Redis } from 'ioredis';",
    cjs: "const { Redis } = require('ioredis');",
    connect: "const client = new Redis(url);\n  client.on('error', () => {});",
    close: 'await client.quit();',
    // ioredis's declarations import the module 'redis-errors', which ships no types: under strict
    // (noImplicitAny) without skipLibCheck, tsc fails inside ioredis's .d.ts (TS7016). Declaring the
    // module is narrower than skipLibCheck, which would also skip checking the package's .d.ts here.
    extraTypes: {
      'redis-errors.d.ts': "// ioredis imports it; it ships no types of its own.\ndeclare module 'redis-errors';\n",
    },
    types: [
      "import { Cluster, Redis } from 'ioredis';",
      '',
      "const client = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });",
      "const cluster = new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true });",
      'const clients = [client, cluster] as const;',
    ],
  },
  {
    name: 'iovalkey',
    install: ['iovalkey'],
    own: ['iovalkey'],
    esm: "import { Redis } from 'iovalkey';",
    cjs: "const { Redis } = require('iovalkey');",
    connect: "const client = new Redis(url);\n  client.on('error', () => {});",
    close: 'await client.quit();',
    types: [
      "import { Cluster, Redis } from 'iovalkey';",
      '',
      "const client = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });",
      "const cluster = new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true });",
      'const clients = [client, cluster] as const;',
    ],
  },
];

/** The write-and-read-back script, the same for both module systems. */
function roundTrip(p) {
  return `  const url = process.env.REDIS_URL;
  const key = \`pack-check:\${process.env.MODULE_SYSTEM}:${p.name}\`;
  ${p.connect}
  const data = randomBytes(300 * 1024);
  await pipeline(Readable.from([data]), createRedisWriteStream(client, key, { chunkSize: 64 * 1024 }));
  const parts = [];
  for await (const chunk of createRedisReadStream(client, key)) parts.push(chunk);
  const back = Buffer.concat(parts);
  if (!back.equals(data)) throw new Error(\`read back \${back.length} bytes that differ from the \${data.length} written\`);
  const st = await stat(client, key);
  if (st.state !== 'complete' || st.size !== data.length) throw new Error(\`stat: \${st.state}, \${st.size} bytes\`);
  if (!(await remove(client, key))) throw new Error('remove found no file');
  ${p.close}
  console.log(\`ok: \${process.env.MODULE_SYSTEM}, ${p.name}, \${data.length} bytes written and read back\`);`;
}

function esmScript(p) {
  return `import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
${p.esm}
import { createRedisReadStream, createRedisWriteStream, remove, stat } from 'redis-file-stream';

${roundTrip(p).replace(/^ {2}/gm, '')}
`;
}

function cjsScript(p) {
  return `'use strict';
const { randomBytes } = require('node:crypto');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
${p.cjs}
const { createRedisReadStream, createRedisWriteStream, remove, stat } = require('redis-file-stream');

(async () => {
${roundTrip(p)}
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
`;
}

/** Every client of the project through the package's functions, with no cast anywhere. */
function typeCheck(p) {
  return `${p.types.join('\n')}
import {
  createRedisReadStream,
  createRedisWriteStream,
  type FileStat,
  list,
  type RedisClient,
  type RedisReadStream,
  type RedisWriteStream,
  remove,
  stat,
} from 'redis-file-stream';

export async function useAll(): Promise<void> {
  for (const c of clients) {
    const accepted: RedisClient = c;
    const ws: RedisWriteStream = createRedisWriteStream(c, 'k', { chunkSize: 65536 });
    const rs: RedisReadStream = createRedisReadStream(c, 'k', { start: 1 });
    const st: FileStat = await stat(c, 'k');
    for await (const f of list(c, { match: 'k*' })) console.log(f.key, f.size);
    const removed: boolean = await remove(c, 'k');
    console.log(accepted, ws, rs, st, removed);
  }
  createRedisWriteStream(client, 'k');
  createRedisReadStream(cluster, 'k');
}
`;
}

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    types: ['node'],
  },
  files: ['check.ts', 'check.cts'],
};

/** Run a command; reject with its output when it fails. */
function run(file, argv, options) {
  return new Promise((resolve, reject) => {
    execFile(file, argv, { maxBuffer: 64 * 1024 * 1024, timeout: 180_000, ...options }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const what = err.killed ? 'was killed (timeout)' : `exited with ${err.code}`;
      const output = `${stdout}${stderr}`.trim().split('\n').slice(-60).join('\n');
      reject(new Error(`\`${[file, ...argv].join(' ')}\` in ${options?.cwd ?? root} ${what}:\n${output}`));
    });
  });
}

const npm = (argv, cwd) => run(process.platform === 'win32' ? 'npm.cmd' : 'npm', argv, { cwd });
const seconds = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** npm install from the cache alone; from the registry when the cache lacks something. */
async function install(dir) {
  const common = ['install', '--no-audit', '--no-fund', '--loglevel=error'];
  try {
    await npm([...common, '--offline'], dir);
    return 'offline, from the npm cache';
  } catch (err) {
    if (!/ENOTCACHED|offline/i.test(err.message)) throw err;
    await npm([...common, '--prefer-offline'], dir);
    return 'from the registry (the npm cache lacked a package)';
  }
}

/**
 * Are the Types Wrong? on the tarball: every entry point's types resolve, for both module systems,
 * under node16 resolution (its "node16" profile; the package has no types for node10).
 */
async function attw(tarball) {
  const t0 = Date.now();
  const cli = join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js');
  await run(process.execPath, [cli, tarball, '--profile', 'node16', '--no-color'], { cwd: root });
  return seconds(t0);
}

async function checkProject(p, tarball, tmp, url) {
  const dir = join(tmp, p.name);
  mkdirSync(dir);
  const deps = { 'redis-file-stream': `file:${tarball}`, '@types/node': manifest.devDependencies['@types/node'] };
  for (const name of p.install) deps[name] = manifest.devDependencies[name];
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `pack-check-${p.name}`, private: true, type: 'module', dependencies: deps }, null, 2)}\n`,
  );
  writeFileSync(join(dir, 'check.mjs'), esmScript(p));
  writeFileSync(join(dir, 'check.cjs'), cjsScript(p));
  writeFileSync(join(dir, 'check.ts'), typeCheck(p));
  writeFileSync(join(dir, 'check.cts'), typeCheck(p));
  const extraTypes = Object.entries(p.extraTypes ?? {});
  for (const [file, text] of extraTypes) writeFileSync(join(dir, file), text);
  const tsconfig = { ...TSCONFIG, files: [...TSCONFIG.files, ...extraTypes.map(([file]) => file)] };
  writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);

  const steps = [];
  const step = async (name, fn) => {
    const t0 = Date.now();
    try {
      const detail = await fn();
      steps.push(`${name} (${seconds(t0)})${typeof detail === 'string' && detail ? `: ${detail.trim()}` : ''}`);
    } catch (err) {
      err.message = `${name} failed (${seconds(t0)}) after: ${steps.join('; ') || 'nothing'}\n${err.message}`;
      throw err;
    }
  };
  await step('npm install', () => install(dir));
  await step('only its own client installed', () => {
    const modules = join(dir, 'node_modules');
    if (!existsSync(join(modules, 'redis-file-stream', 'package.json'))) throw new Error('redis-file-stream missing');
    for (const name of p.own) {
      if (!existsSync(join(modules, name))) throw new Error(`${name} is not installed`);
    }
    const others = ALL_CLIENT_PACKAGES.filter((name) => !p.own.includes(name) && existsSync(join(modules, name)));
    if (others.length > 0) throw new Error(`node_modules holds other client libraries: ${others.join(', ')}`);
  });
  const env = { ...process.env, REDIS_URL: url };
  await step('ES module', () =>
    run(process.execPath, ['check.mjs'], { cwd: dir, env: { ...env, MODULE_SYSTEM: 'esm' } }),
  );
  await step('CommonJS', () =>
    run(process.execPath, ['check.cjs'], { cwd: dir, env: { ...env, MODULE_SYSTEM: 'cjs' } }),
  );
  await step('tsc --noEmit (strict, .ts and .cts)', () => run(process.execPath, [tsc, '-p', dir], { cwd: dir }));
  // The command-line tool connects with ioredis or iovalkey: where neither is installed it says
  // what to install, in one line, and fails.
  const cli = join(dir, 'node_modules', 'redis-file-stream', 'dist', 'esm', 'cli', 'main.js');
  await step('redis-file ls', async () => {
    const listed = run(process.execPath, [cli, '--url', url, 'ls', 'pack-check-*'], { cwd: dir });
    if (p.name !== 'node-redis') return listed.then(() => 'lists the files');
    const err = await listed.then(
      () => new Error('redis-file ran without ioredis or iovalkey'),
      (e) => e,
    );
    if (!/npm install ioredis/.test(err.message)) throw err;
    return 'says to install ioredis';
  });
  return steps;
}

async function main() {
  const t0 = Date.now();
  const tmp = mkdtempSync(join(os.tmpdir(), 'rfs-pack-check-'));
  let server;
  let failed = 0;
  try {
    const tp = Date.now();
    const tarball = await packFromSources(root, tmp);
    console.log(`pack-check: npm pack ${basename(tarball)} (${seconds(tp)})`);
    server = await startRedis();
    const results = await Promise.allSettled([
      attw(tarball),
      ...PROJECTS.map((p) => checkProject(p, tarball, tmp, server.url)),
    ]);
    const [types] = results.splice(0, 1);
    if (types.status === 'fulfilled')
      console.log(`pack-check: attw (types under node16 resolution): ok (${types.value})`);
    else {
      failed++;
      console.error(
        `pack-check: attw (types under node16 resolution): FAILED\n${types.reason?.message ?? types.reason}`,
      );
    }
    results.forEach((r, i) => {
      const { name, install: only } = PROJECTS[i];
      if (r.status === 'fulfilled') {
        console.log(`pack-check: ${name} (installs ${only.join(', ')} only): ok`);
        for (const s of r.value) console.log(`  ${s}`);
      } else {
        failed++;
        console.error(
          `pack-check: ${name} (installs ${only.join(', ')} only): FAILED\n${r.reason?.message ?? r.reason}`,
        );
      }
    });
  } finally {
    await server?.stop();
    if (args.keep) console.log(`pack-check: kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
  console.log(
    `pack-check: ${failed === 0 ? 'all passed' : `${failed} of ${PROJECTS.length + 1} checks FAILED`} (${seconds(t0)})`,
  );
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`pack-check: ${err?.stack ?? err}`);
  process.exitCode = 1;
}
