/**
 * The `redis-file` command on a Redis Cluster: the seeds as several --url options (or a list in
 * REDIS_URL), or one URL with --cluster. Runs in the `cluster` project, on the shared cluster.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterSeeds, uniqueKey } from './helpers/clients.js';
import { slotOfFile } from './helpers/keys.js';
import { bytes, sha256 } from './helpers/streams.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist', 'esm', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'rfs-cli-cluster-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function seeds(): string[] {
  const s = clusterSeeds();
  if (!s) throw new Error('this file runs in the cluster project only');
  return s.map(({ host, port }) => `redis://${host}:${port}`);
}

interface Result {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run the command with `env` (REDIS_URL unset unless given) and wait for it to exit. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('REDIS_URL' in env)) delete e.REDIS_URL;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: e, encoding: 'buffer', timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() });
      },
    );
  });
}

describe('redis-file on a cluster', () => {
  it('put, stat, get, ls, mv and rm with the seeds given as several --url options', async () => {
    const urls = seeds().flatMap((url) => ['--url', url]);
    const key = uniqueKey('cli');
    const source = join(dir, 'in.bin');
    const data = bytes(700_000, 21);
    writeFileSync(source, data);
    expect((await cli([...urls, 'put', '--wait-replicas', '1', source, key])).code).toBe(0);
    const st = await cli([...urls, 'stat', key, '--json']);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout.toString())).toMatchObject({ key, state: 'complete', size: data.length });
    const out = join(dir, 'out.bin');
    expect((await cli([...urls, 'get', key, out])).code).toBe(0);
    expect(sha256(readFileSync(out))).toBe(sha256(data));
    // Files on every primary are listed.
    const others = [uniqueKey('cli-ls'), uniqueKey('cli-ls'), uniqueKey('cli-ls')];
    for (const k of others) expect((await cli([...urls, 'put', source, k])).code).toBe(0);
    const ls = await cli([...urls, 'ls', `${key.replace(/:cli:\d+$/, '')}:*`, '--json']);
    expect(ls.code).toBe(0);
    const listed = ls.stdout
      .toString()
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { key: string }).key);
    expect(listed).toEqual(expect.arrayContaining([key, ...others]));
    const moved = uniqueKey('cli-moved');
    expect((await cli([...urls, 'mv', key, moved])).code).toBe(0);
    expect((await cli([...urls, 'cat', moved])).stdout.equals(data)).toBe(true);
    expect((await cli([...urls, 'rm', moved, ...others])).code).toBe(0);
    expect((await cli([...urls, 'stat', moved])).code).toBe(1);
  });

  it('one seed with --cluster, from REDIS_URL; and a list of seeds in REDIS_URL', async () => {
    const key = uniqueKey('cli-env');
    const one = { REDIS_URL: seeds()[0]! };
    const put = await new Promise<Result>((resolve) => {
      const child = execFile(
        process.execPath,
        [CLI, '--cluster', 'put', '-', key],
        { env: { ...process.env, ...one }, encoding: 'buffer' },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr: stderr.toString() }),
      );
      child.stdin!.end('hello, cluster\n');
    });
    expect(put).toMatchObject({ code: 0 });
    const cat = await cli(['cat', key], { REDIS_URL: seeds().join(',') });
    expect(cat.code).toBe(0);
    expect(cat.stdout.toString()).toBe('hello, cluster\n');
    expect((await cli(['--cluster', 'rm', key], one)).code).toBe(0);
  });

  it('send and receive through a channel', async () => {
    const urls = seeds().flatMap((url) => ['--url', url]);
    const channel = uniqueKey('cli-channel');
    const files = ['a.log', 'b.log'].map((name, i) => {
      const path = join(dir, name);
      writeFileSync(path, `line ${i}\n`.repeat(1000 * (i + 1)));
      return path;
    });
    expect((await cli([...urls, 'send', channel, '--close', ...files])).code).toBe(0);
    const out = mkdtempSync(join(dir, 'recv-'));
    const received = await cli([...urls, 'receive', channel, '--consumer', 'c1', '--out', out]);
    expect(received.code).toBe(0);
    for (const path of files)
      expect(readFileSync(join(out, path.split('/').pop()!)).equals(readFileSync(path))).toBe(true);
    expect((await cli([...urls, 'rm-channel', channel])).code).toBe(0);
  });

  it("one node's URL without --cluster: ls and rm of a pattern fail rather than see that node's files only; get names --cluster", async () => {
    const prefix = uniqueKey('cli-one-node');
    const urls = seeds().flatMap((url) => ['--url', url]);
    // The slots the first seed serves: the files are named so that one lies there and one elsewhere.
    const seed = new Redis(seeds()[0]!);
    const ranges = (await seed.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    seed.disconnect();
    const port = Number(new URL(seeds()[0]!).port);
    const onSeed = (key: string): boolean =>
      ranges.some(([from, to, [, at]]) => at === port && slotOfFile(key) >= from && slotOfFile(key) <= to);
    const keys: string[] = [];
    for (let i = 0; !(keys.some(onSeed) && keys.some((k) => !onSeed(k))); i++) keys.push(`${prefix}/${i}.log`);
    for (const key of keys) {
      const put = await new Promise<Result>((resolve) => {
        const child = execFile(
          process.execPath,
          [CLI, ...urls, 'put', '-', key],
          { encoding: 'buffer' },
          (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr: stderr.toString() }),
        );
        child.stdin!.end(key);
      });
      expect(put.code, put.stderr).toBe(0);
    }
    const one = { REDIS_URL: seeds()[0]! };
    for (const args of [
      ['ls', `${prefix}/*`],
      ['rm', `${prefix}/*`],
    ]) {
      const r = await cli(args, one);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/one node of a Redis Cluster, .*: add --cluster \(ERR_REDIS_FILE_REDIS\)/);
    }
    const moved = await Promise.all(keys.map((key) => cli(['get', key], one)));
    for (const [i, r] of moved.entries()) {
      if (onSeed(keys[i]!)) expect(r.code, r.stderr).toBe(0);
      else expect(r.stderr).toMatch(/MOVED .*one node of a Redis Cluster: add --cluster/);
    }
    const listed = await cli([...urls, 'ls', `${prefix}/*`]);
    expect(listed.stdout.toString().trim().split('\n')).toHaveLength(keys.length);
    expect((await cli([...urls, 'rm', `${prefix}/*`])).code).toBe(0);
  });

  it('a URL that is no cluster node fails with one line, exit 1', async () => {
    const result = await cli(['--cluster', '--url', 'redis://127.0.0.1:1', 'ls']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/cannot connect to Redis/);
  });
});
