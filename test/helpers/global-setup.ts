/**
 * vitest globalSetup: checks that redis-server is installed, starts ONE shared standalone
 * server for the whole run, hands its URL to the tests (`inject('redisUrl')`), and stops
 * it (and any server a test left behind) at the end.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { type RedisServer, RUN_DIR_ENV, reapServers, startRedis } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the shared redis-server of this test run, e.g. `redis://127.0.0.1:40123`. */
    redisUrl: string;
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let shared: RedisServer | undefined;
let runDir: string | undefined;

/**
 * Examples, the demo, the package test and the crash tests run the built package in child
 * processes. `npm test` builds before the tests; a bare `vitest run` builds here, once, so that
 * no two test files ever rebuild (and so delete) dist/ under each other.
 */
export function ensureBuilt(): void {
  if (!existsSync(join(root, 'dist', 'esm', 'index.js')) || !existsSync(join(root, 'dist', 'cjs', 'index.js'))) {
    const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`node scripts/build.mjs failed:\n${build.stdout}\n${build.stderr}`);
  }
}

/** Fail early, with the command to run, when redis-server is not installed. */
export function ensureRedisInstalled(): void {
  const check = spawnSync('bash', [join(root, 'scripts', 'ensure-redis.sh'), '--check'], { encoding: 'utf8' });
  if (check.status !== 0) {
    throw new Error(
      'redis-server is required for the tests (they start their own servers on free ports).\n' +
        `${(check.stderr || '').trim()}\n${(check.stdout || '').trim()}\n` +
        'Run `bash scripts/ensure-redis.sh` (as root it installs the Debian package redis-server).',
    );
  }
}

export async function setup(project: TestProject): Promise<void> {
  ensureRedisInstalled();

  ensureBuilt();

  // Every server started during the run (here or in a test worker, which inherits this
  // environment) keeps its dir and pid file under this folder, so teardown can reap them all.
  runDir = mkdtempSync(join(tmpdir(), 'redis-file-stream-test-'));
  process.env[RUN_DIR_ENV] = runDir;

  shared = await startRedis();
  project.provide('redisUrl', shared.url);
}

export async function teardown(): Promise<void> {
  try {
    await shared?.stop();
  } finally {
    shared = undefined;
    if (runDir) {
      const reaped = reapServers(runDir);
      if (reaped > 0) console.warn(`global-setup: killed ${reaped} redis-server(s) that tests left running`);
      delete process.env[RUN_DIR_ENV];
      runDir = undefined;
    }
  }
}
