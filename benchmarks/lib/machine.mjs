// The machine description stored in a results JSON, in the format of benchmarks/results/*.json
// (the same fields run.mjs writes): OS, CPUs, memory, load, Node, Redis, ioredis, the package's
// version and commit.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

export function versionOf(name) {
  try {
    return JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** HEAD of the repository at `root`, and whether src/ has uncommitted changes. */
export function gitCommit(root) {
  try {
    const git = (...args) =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src').length > 0 };
  } catch {
    return { commit: undefined, srcDirty: undefined };
  }
}

export const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/**
 * @param {{ root: string, redis: string | undefined, redisServer: string }} what `redis` is the
 *   server's version, `redisServer` says which servers were measured.
 */
export function describeMachine({ root, redis, redisServer }) {
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadavgAtStart: loadavg(),
    node: process.version,
    v8: process.versions.v8,
    redis,
    redisServer,
    ioredis: versionOf('ioredis'),
    package: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version,
    ...gitCommit(root),
  };
}
