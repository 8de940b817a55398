/**
 * What `redis-file` says when something is wrong: usage errors (exit 2), a missing file, an unreadable
 * local file, no Redis at the URL (exit 1, one line each), and nothing left running at the end.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, expectOneLine, run, stateOf, useTempDir } from './helpers/cli.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';
import { put } from './helpers/streams.js';

const redis = connect();

/** Run the command with `path` opened (a directory too) as its standard input, as `< path` does. */
async function runIn(args: string[], path: string): Promise<{ code: number | null; stderr: string }> {
  const input = openSync(path, 'r');
  try {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_URL: sharedRedisUrl() },
      stdio: [input, 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stderr };
  } finally {
    closeSync(input);
  }
}
const dir = useTempDir();
afterAll(closeAll);

describe('exit codes and messages', () => {
  it.each([
    ['a missing argument', ['put', 'only-one']],
    ['an unknown command', ['frobnicate']],
    ['an unknown option', ['get', 'k', '--bogus']],
    ['too many arguments', ['stat', 'a', 'b']],
    ['a bad size', ['put', '--chunk-size', '12q', '-', 'k']],
    ['a bad duration', ['put', '--ttl', 'soon', '-', 'k']],
    ['a bad metadata entry', ['put', '--meta', 'novalue', '-', 'k']],
    ['options that cannot go together', ['get', 'k', '--decompress', '--start', '10']],
    ['a range that ends before it starts', ['get', 'k', '--start', '10', '--end', '5']],
    ['a URL that is not Redis', ['stat', 'k', '--url', 'http://example.com']],
    ['a URL whose database is not a number', ['stat', 'k', '--url', 'redis://127.0.0.1:6379/abc']],
    ['a --redis-timeout longer than a timer holds', ['stat', 'k', '--redis-timeout', '25d']],
    ['an empty key', ['rm', '']],
    ['a prefix the library refuses', ['stat', 'k', '--prefix', 'a{b}']],
    ['a prefix the library refuses, listing', ['ls', '*', '--prefix', 'a{b}']],
    [
      'a prefix the library refuses, receiving',
      ['receive', 'ch', '--consumer', 'r', '--exec', 'cat', '--prefix', 'a{'],
    ],
    ['receive with neither --out nor --exec', ['receive', 'ch', '--consumer', 'r']],
    [
      'receive with both --out and --exec',
      ['receive', 'ch', '--consumer', 'r', '--out', 'never-created', '--exec', 'cat'],
    ],
    ['receive without --consumer', ['receive', 'ch', '--out', 'never-created']],
    ['send without files', ['send', 'ch']],
    ['help for a command that does not exist', ['help', 'frob']],
    ['send with a bad --consumers', ['send', 'ch', 'f', '--consumers', '0']],
    ['send with a bad --max-redis-memory', ['send', 'ch', 'f', '--max-redis-memory', 'lots']],
  ])('%s is a usage error: exit 2 with the usage', async (_, args) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr).toMatch(/Usage: redis-file|redis-file --help/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('a duration past what a timer holds says the most it may be', async () => {
    for (const [args, most] of [
      [['put', '--ttl', '100000d', '-', 'k'], 'at most 2147483647 (24855d03h)'],
      [['expire', 'k', '30000d'], 'at most 2147483647 (24855d03h)'],
      [['get', 'k', '--wait-for-create', '25d'], 'at most 2147483647 (24d20h)'],
    ] as const) {
      const r = await run([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain(most);
    }
  });

  it('usage errors are told before connecting: exit 2 with Redis unreachable, and nothing made locally', async () => {
    const nowhere = ['--url', 'redis://127.0.0.1:1'];
    const out = join(dir(), 'never-made');
    for (const args of [
      ['put', 'f1', 'f2', 'no-slash', ...nowhere],
      ['put', 'f1', '-', 'logs/', ...nowhere],
      ['receive', '', '--consumer', 'r', '--out', out, ...nowhere],
    ]) {
      const r = await run(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('--cluster (or several --url) given a single server: exit 1, one line that says so', async () => {
    for (const args of [
      ['--cluster', '--url', sharedRedisUrl(), 'ls', 'x*'],
      ['--url', sharedRedisUrl(), '--url', sharedRedisUrl(), 'stat', 'k'],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(expectOneLine(r.stderr)).toMatch(
        /cluster support disabled \(a single server, not a Redis Cluster: leave out --cluster and give one --url\)$/,
      );
    }
  });

  it('a missing file: exit 1, one line naming the key (a read: and how to wait for it), no stack trace', async () => {
    const key = uniqueKey('missing');
    for (const args of [
      ['get', key],
      ['cat', key],
      ['stat', key],
      ['get', key, join(dir(), 'never.bin')],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(r.stdout.length).toBe(0);
      const line = expectOneLine(r.stderr);
      expect(line).toContain(JSON.stringify(key));
      expect(line).toContain('ERR_REDIS_FILE_NOT_FOUND');
      // A read says how to wait for the file instead (a follower started before its writer).
      if (args[0] === 'stat') expect(line).not.toContain('--wait-for-create');
      else expect(line).toContain('to wait for it to be created, add --wait-for-create 30s');
    }
    expect(existsSync(join(dir(), 'never.bin'))).toBe(false);
  });

  it('a local file that cannot be read: exit 1, one line, nothing stored', async () => {
    const key = uniqueKey('nosource');
    const r = await run(['put', join(dir(), 'no-such-file'), key]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toContain('no-such-file');
    expect(await stateOf(redis, key)).toBeUndefined();
  });

  it('a directory as standard input (put - key < dir): exit 1, one line, nothing stored', async () => {
    const key = uniqueKey('stdin-dir');
    const r = await runIn(['put', '-', key], dir());
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toMatch(/^redis-file: cannot read standard input: it is a directory$/);
    expect(await stateOf(redis, key)).toBeUndefined();
  });

  it('a directory that cannot be made: exit 1, one line, also where mkdir -p of fs loops (/proc)', async () => {
    const name = `rfs-${randomBytes(4).toString('hex')}`;
    const plain = join(dir(), 'plain-file');
    writeFileSync(plain, 'x');
    const cases: [string[], string][] = [
      [
        ['receive', uniqueKey('mkdir'), '--consumer', 'r', '--out', `/proc/${name}/in`],
        `cannot write to /proc/${name}/in`,
      ],
      [['receive', uniqueKey('mkdir'), '--consumer', 'r', '--out', join(plain, 'in')], 'ENOTDIR'],
      [['get', `${uniqueKey('mkdir')}/*`, `/proc/${name}/`], `/proc/${name}`],
    ];
    for (const [args, expected] of cases) {
      if (args[0] === 'get') await put(redis, args[1]!.replace('*', 'a/b'), Buffer.from('x'));
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(expectOneLine(r.stderr)).toContain(expected);
    }
  });

  it('send of a directory: exit 1, one line naming it once', async () => {
    const folder = mkdtempSync(join(dir(), 'a-folder-'));
    const r = await run(['send', uniqueKey('send-dir'), folder]);
    expect(r.code).toBe(1);
    const line = expectOneLine(r.stderr);
    expect(line).toContain(`cannot read ${folder}: is a directory`);
    expect(line.split(folder).length - 1).toBe(1);
  });

  it('no Redis at the URL: exit 1, one line naming the URL without its password', async () => {
    // A port nobody listens on: take a free one and let it go.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const r = await run(['ls'], { env: { REDIS_URL: `redis://someone:secret@127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    const line = expectOneLine(r.stderr);
    expect(line).toContain(`127.0.0.1:${port}`);
    expect(line).not.toContain('secret');
  });

  it('leaves nothing running once a command is done, whether it succeeded or failed', async () => {
    // With REDIS_FILE_DEBUG=1 the command says so if anything (a timer, a socket) kept it alive
    // after its end, before it ends itself.
    const debug = { env: { REDIS_FILE_DEBUG: '1' } };
    const key = uniqueKey('linger');
    const missing = uniqueKey('linger-missing');
    const channel = uniqueKey('linger-channel');
    const file = join(dir(), 'linger.bin');
    writeFileSync(file, randomBytes(100_000));
    const results = [
      await run(['put', '-', key], { ...debug, input: randomBytes(100_000) }),
      await run(['get', key], debug),
      await run(['cat', key], debug),
      await run(['ls', `${key}*`], debug),
      await run(['get', missing], debug),
      await run(['ls'], { env: { REDIS_FILE_DEBUG: '1', REDIS_URL: 'redis://127.0.0.1:1' } }),
      await run(['send', '--close', channel, file], debug),
      await run(['receive', channel, '--consumer', 'a', '--out', mkdtempSync(join(dir(), 'linger-'))], debug),
      await run(['receive', channel, '--consumer', 'b', '--exec', 'exit 4'], debug),
    ];
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 1, 1, 0, 0, 1]);
    for (const r of results) expect(r.stderr).not.toContain('still running after the end');
  });
});

describe('messages name the flags of the command, not the options of the library', () => {
  it('put and mv onto a file: use -f/--overwrite', async () => {
    const key = uniqueKey('flag-overwrite');
    const other = uniqueKey('flag-overwrite-other');
    await put(redis, key, Buffer.from('first'));
    await put(redis, other, Buffer.from('other'));
    const refused = await run(['put', '-', key], { input: 'second' });
    expect(refused.code).toBe(1);
    expect(expectOneLine(refused.stderr)).toBe(
      `redis-file: File ${JSON.stringify(key)}: a complete file is stored at this key; ` +
        'use -f/--overwrite to replace it (ERR_REDIS_FILE_EXISTS)',
    );
    const mv = await run(['mv', other, key]);
    expect(mv.code).toBe(1);
    expect(expectOneLine(mv.stderr)).toBe(
      `redis-file: File ${JSON.stringify(key)}: a complete file is stored at the new name; ` +
        'use -f/--overwrite to replace it (ERR_REDIS_FILE_EXISTS)',
    );
  });

  it('get after --wait-for-create runs out: names --wait-for-create', async () => {
    const key = uniqueKey('flag-wait');
    const r = await run(['get', '--wait-for-create', '1500ms', key]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toBe(
      `redis-file: File ${JSON.stringify(key)}: no file appeared at this key ` +
        'within --wait-for-create (1.5 s) (ERR_REDIS_FILE_TIMEOUT)',
    );
  });

  it('a range past the end names --start', async () => {
    const key = uniqueKey('flag-start');
    await put(redis, key, Buffer.from('0123456789'));
    const r = await run(['get', key, '--start', '20']);
    expect(r.code).toBe(1);
    const line = expectOneLine(r.stderr);
    expect(line).toContain('--start');
    expect(line).not.toContain('`');
  });
});
