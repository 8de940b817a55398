/**
 * The `redis-file` command, run as its users run it: the built binary (dist/esm/cli/main.js) in a
 * child process, against the shared redis-server of the run, with REDIS_URL in its environment. Its
 * stderr is a pipe, not a terminal, so no progress bar is drawn and stderr holds only errors (and
 * receive's line per file).
 *
 * These tests exercise dist/, not src/: run `node scripts/build.mjs` after changing src/cli/.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeChannel, type FileStat, sendFiles, stat } from '../src/index.js';
import { channelLogKey } from '../src/format.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';
import { put } from './helpers/streams.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist', 'esm', 'cli', 'main.js');
/** Longest any one run of the command may take before the test gives up on it (not a duration check). */
const RUN_TIMEOUT = 60_000;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

interface Running {
  child: ChildProcessWithoutNullStreams;
  /** What the child printed so far. */
  stdout(): Buffer;
  stderr(): string;
  /** Resolves when the child has exited (killed after RUN_TIMEOUT). */
  done: Promise<Result>;
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: sharedRedisUrl(), ...extra };
  delete e.REDIS_FILE_DEBUG;
  return e;
}

/** Start `node dist/esm/cli/main.js ...args`. */
function start(args: string[], options: { env?: Record<string, string> } = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env: env(options.env), stdio: 'pipe' });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // A test may close its end of stdin early; the child's EPIPE is its business.
  child.stdin.on('error', () => {});
  const done = new Promise<Result>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-file ${args.join(' ')} did not exit within ${RUN_TIMEOUT} ms; stderr: ${err}`));
    }, RUN_TIMEOUT);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, done };
}

/** Run the command to its end, with `input` on its stdin (or none). */
async function run(args: string[], options: { input?: Buffer | string; env?: Record<string, string> } = {}): Promise<Result> {
  const running = start(args, options);
  running.child.stdin.end(options.input);
  return running.done;
}

/** Poll `check` until it is true (gives up after RUN_TIMEOUT: a hang, not a slow run). */
async function waitUntil(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + RUN_TIMEOUT;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

/** An expected failure: exactly one line on stderr, no stack trace. */
function expectOneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

const redis = connect();
let dir: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node scripts/build.mjs\` (dist/ predates src/cli/)`);
  dir = mkdtempSync(join(tmpdir(), 'redis-file-cli-'));
});

afterAll(async () => {
  await closeAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function stateOf(key: string): Promise<FileStat | undefined> {
  return stat(redis, key).catch(() => undefined);
}

describe('redis-file --help', () => {
  it('describes every command, the connection and the exit codes, with examples', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.toString();
    expect(help).toMatch(/^Usage: redis-file \[options\] \[command\]/);
    for (const command of ['put', 'get', 'cat', 'stat', 'ls', 'rm', 'expire', 'mv', 'send', 'receive', 'close', 'rm-channel']) expect(help).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(help).toContain('REDIS_URL');
    expect(help).toContain('Examples:');
    expect(help).toContain('Exit codes:');
  });

  it('gives each command a help of its own, with the defaults', async () => {
    const r = await run(['put', '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.toString();
    expect(help).toContain('Usage: redis-file put [options] <path|-> <key>');
    expect(help).toContain('--chunk-size <bytes>');
    expect(help).toContain('(default: 256k)');
    expect(help).toContain('--url <url>');
    const get = (await run(['help', 'get'])).stdout.toString();
    expect(get).toContain('--wait-for-create <ms>');
    expect(get).toContain('--no-follow');
  });

  it('prints the version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout.toString().trim()).toBe(pkg.version);
  });
});

describe('put and get', () => {
  it('round-trips a 3 MiB file byte for byte, to a file and to stdout', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const src = join(dir, 'random.bin');
    writeFileSync(src, data);
    const key = uniqueKey('file');

    const stored = await run(['put', src, key]);
    expect(stored).toMatchObject({ code: 0, stderr: '' });
    expect(stored.stdout.length).toBe(0);

    const out = join(dir, 'random.out');
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

  it('reads a byte range, --end inclusive', async () => {
    const data = randomBytes(10_000);
    const key = uniqueKey('range');
    await put(redis, key, data, { chunkSize: 1024 });
    const r = await run(['get', key, '--start', '1k', '--end', '5000']);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(data.subarray(1024, 5001))).toBe(true);
  });

  it('writes into a directory under the last segment of the key, and leaves no partial file on failure', async () => {
    const key = uniqueKey('dir');
    await put(redis, `${key}/name.txt`, Buffer.from('hello'));
    const target = mkdtempSync(join(dir, 'target-'));
    expect((await run(['get', `${key}/name.txt`, target])).code).toBe(0);
    expect(readFileSync(join(target, 'name.txt'), 'utf8')).toBe('hello');

    const failed = await run(['get', `${key}/missing`, join(target, 'missing.txt')]);
    expect(failed.code).toBe(1);
    expect(readdirSync(target)).toEqual(['name.txt']);
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
    const src = join(dir, 'text.csv');
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
    const src = join(dir, 'text.csv.gz');
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

describe('cat', () => {
  it('follows a put that is still running and ends when it completes', async () => {
    const key = uniqueKey('follow');
    const parts = Array.from({ length: 6 }, () => randomBytes(3000));
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    writer.child.stdin.write(parts[0]);
    await waitUntil('the put has created the file', async () => (await stateOf(key))?.state === 'writing');

    const reader = start(['cat', key]);
    // cat delivers what is committed while the writer is still at work...
    await waitUntil('cat has received the first part', () => reader.stdout().length >= 2048);
    for (const part of parts.slice(1)) {
      writer.child.stdin.write(part);
      await sleep(50);
    }
    // ...and keeps waiting as long as the file is not complete.
    expect(reader.child.exitCode).toBeNull();
    expect((await stateOf(key))?.state).toBe('writing');
    writer.child.stdin.end();

    const [w, r] = await Promise.all([writer.done, reader.done]);
    expect(w).toMatchObject({ code: 0, stderr: '' });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.equals(Buffer.concat(parts))).toBe(true);
  });

  it('concatenates several files, and waits for one not created yet with --wait-for-create', async () => {
    const a = uniqueKey('cat-a');
    const b = uniqueKey('cat-b');
    await put(redis, a, Buffer.from('first\n'));
    const reader = start(['cat', '--wait-for-create', '60s', a, b]);
    await waitUntil('cat has printed the first file', () => reader.stdout().length === 6);
    await put(redis, b, Buffer.from('second\n'));
    const r = await reader.done;
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.toString()).toBe('first\nsecond\n');
  });
});

describe('ls', () => {
  it('lists exactly the 2000 files under a pattern, as JSON lines and for people', { timeout: 120_000 }, async () => {
    const prefix = uniqueKey('many');
    const keys = Array.from({ length: 2000 }, (_, i) => `${prefix}/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 200) {
      await Promise.all(keys.slice(i, i + 200).map((key, j) => put(redis, key, Buffer.from(`file ${i + j}`))));
    }
    // A file outside the pattern that shares the start of its name.
    await put(redis, `${prefix}-other`, Buffer.from('not listed'));

    const json = await run(['ls', `${prefix}/*`, '--json']);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const lines = json.stdout.toString().trim().split('\n');
    expect(lines).toHaveLength(keys.length);
    const files = lines.map((line) => JSON.parse(line) as { key: string; state: string; size: number; created: string });
    expect(files.map((f) => f.key).sort()).toEqual(keys);
    for (const f of files) {
      expect(f.state).toBe('complete');
      expect(f.size).toBe(`file ${Number(f.key.slice(-4))}`.length);
      expect(new Date(f.created).toISOString()).toBe(f.created);
    }

    const human = await run(['ls', `${prefix}/*`]);
    expect(human.code).toBe(0);
    const rows = human.stdout.toString().trim().split('\n');
    expect(rows.map((row) => row.split(/\s+/).at(-1))).toEqual(keys);
    expect(rows[0]).toMatch(/^complete\s+6 B\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+/);
  });

  it('prints nothing for a pattern that matches nothing', async () => {
    const r = await run(['ls', `${uniqueKey('none')}/*`]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.length).toBe(0);
  });
});

describe('rm, mv, expire', () => {
  it('removes several files; stat then fails; a missing key fails unless --force', async () => {
    const keys = [uniqueKey('rm'), uniqueKey('rm'), uniqueKey('rm')];
    for (const key of keys) await put(redis, key, Buffer.from(key));
    expect(await run(['rm', ...keys])).toMatchObject({ code: 0, stderr: '' });
    for (const key of keys) {
      const s = await run(['stat', key]);
      expect(s.code).toBe(1);
      expect(expectOneLine(s.stderr)).toContain(JSON.stringify(key));
    }
    const again = await run(['rm', keys[0]!]);
    expect(again.code).toBe(1);
    expect(expectOneLine(again.stderr)).toContain(JSON.stringify(keys[0]));
    expect((await run(['rm', '--force', keys[0]!])).code).toBe(0);
  });

  it('renames, and sets and removes the expiry', async () => {
    const from = uniqueKey('mv-from');
    const to = uniqueKey('mv-to');
    await put(redis, from, Buffer.from('moving'));
    expect(await run(['mv', from, to])).toMatchObject({ code: 0, stderr: '' });
    expect((await run(['get', to])).stdout.toString()).toBe('moving');
    expect((await run(['stat', from])).code).toBe(1);

    expect((await run(['expire', to, '10m'])).code).toBe(0);
    const ttl = (await stat(redis, to)).ttl;
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);
    expect((await run(['expire', to, 'none'])).code).toBe(0);
    expect((await stat(redis, to)).ttl).toBeUndefined();
    expect((await run(['expire', from, '60'])).code).toBe(1);
  });
});

describe('send and receive (channels)', () => {
  /** The keys of the files announced on a channel, in order (the log is described in docs/distribution.md). */
  async function announced(channel: string): Promise<string[]> {
    const entries = await redis.xrange(channelLogKey('rfs:', channel), '-', '+');
    return entries.flatMap(([, fields]) => (fields[0] === 'file' ? [fields[1]!] : []));
  }

  /** Wait until `n` receivers have joined the channel: each is a consumer group on its log. */
  async function joined(channel: string, n: number): Promise<void> {
    await waitUntil(`${n} receivers have joined the channel`, async () => {
      const groups = (await redis.xinfo('GROUPS', channelLogKey('rfs:', channel)).catch(() => [])) as unknown[];
      return groups.length >= n;
    });
  }

  /** The names in receive's lines "received <name> (<size>)…", in order. */
  function receivedNames(stderr: string): string[] {
    return stderr
      .split('\n')
      .filter((line) => line.startsWith('received '))
      .map((line) => line.split(' ')[1]!);
  }

  it('sends files in order to two receivers started before it; with --consumers 2 each file is deleted once both have it', async () => {
    const channel = uniqueKey('chan');
    const src = mkdtempSync(join(dir, 'send-'));
    const text = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `row ${i},${i % 7}\n`).join(''));
    const files: [string, Buffer][] = [
      ['a.bin', randomBytes(700_000)],
      ['b.txt', text],
      ['c.csv.gz', gzipSync(text)],
      ['d.empty', Buffer.alloc(0)],
    ];
    for (const [name, data] of files) writeFileSync(join(src, name), data);
    // The output directories do not exist yet: receive creates them.
    const outs = ['r1', 'r2'].map((name) => join(dir, `${name}-${randomBytes(4).toString('hex')}`, 'files'));
    const receivers = outs.map((out, i) => start(['receive', channel, '--consumer', `r${i + 1}`, '--out', out]));
    await joined(channel, 2);

    const sent = await run(['send', channel, '--consumers', '2', '--chunk-size', '64k', '--close', ...files.map(([name]) => join(src, name))]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    expect(sent.stdout.length).toBe(0);

    const results = await Promise.all(receivers.map((r) => r.done));
    for (const [i, r] of results.entries()) {
      expect(r.code, r.stderr).toBe(0);
      expect(receivedNames(r.stderr)).toEqual(files.map(([name]) => name));
      expect(readdirSync(outs[i]!).sort()).toEqual(files.map(([name]) => name).sort());
      for (const [name, data] of files) expect(readFileSync(join(outs[i]!, name)).equals(data), name).toBe(true);
    }
    // Both acknowledged every file: every file is gone from Redis; the channel's log stays.
    const keys = await announced(channel);
    expect(keys).toHaveLength(files.length);
    for (const key of keys) expect(await stateOf(key)).toBeUndefined();
    expect((await run(['ls', `${channel}/*`])).stdout.length).toBe(0);

    expect(await run(['rm-channel', channel])).toMatchObject({ code: 0, stderr: '' });
    const again = await run(['rm-channel', channel]);
    expect(again.code).toBe(1);
    expect(expectOneLine(again.stderr)).toContain(JSON.stringify(channel));
    expect((await run(['rm-channel', '--force', channel])).code).toBe(0);
  });

  it('--exec pipes each file to a command, its name in $RFS_NAME; --decompress gunzips and drops the .gz', async () => {
    const channel = uniqueKey('exec');
    const src = mkdtempSync(join(dir, 'exec-src-'));
    const log = Buffer.from(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join(''));
    const csv = Buffer.from(Array.from({ length: 500 }, (_, i) => `${i},${i * 2}\n`).join(''));
    writeFileSync(join(src, 'app.log'), log);
    writeFileSync(join(src, 'data.csv.gz'), gzipSync(csv));
    // Sent before any receiver joins: a receiver that comes late gets every file still held.
    const sent = await run(['send', '--gzip', '--close', channel, join(src, 'app.log'), join(src, 'data.csv.gz')]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    const keys = await announced(channel);
    // --gzip compresses on the way in, except a file already gzipped, which is sent as is.
    expect(await stat(redis, keys[0]!)).toMatchObject({ contentEncoding: 'gzip' });
    expect(await stat(redis, keys[1]!)).toMatchObject({ contentEncoding: 'gzip', size: statSync(join(src, 'data.csv.gz')).size });

    const out = mkdtempSync(join(dir, 'exec-out-'));
    const copy = await run(['receive', channel, '--consumer', 'copier', '--decompress', '--exec', 'cat > "$OUT/$RFS_NAME"'], { env: { OUT: out } });
    expect(copy.code, copy.stderr).toBe(0);
    expect(receivedNames(copy.stderr)).toEqual(['app.log', 'data.csv.gz']);
    expect(readdirSync(out).sort()).toEqual(['app.log', 'data.csv']);
    expect(readFileSync(join(out, 'app.log')).equals(log)).toBe(true);
    expect(readFileSync(join(out, 'data.csv')).equals(csv)).toBe(true);

    // The command's standard output is receive's.
    const count = await run(['receive', channel, '--consumer', 'counter', '-d', '--quiet', '--exec', 'wc -l']);
    expect(count).toMatchObject({ code: 0, stderr: '' });
    expect(count.stdout.toString().trim().split(/\s+/).map(Number)).toEqual([3000, 500]);
  });

  it('a receiver killed (SIGKILL) in the middle of a file and started again with the same --consumer ends with every file', async () => {
    const channel = uniqueKey('kill');
    const src = mkdtempSync(join(dir, 'kill-src-'));
    const out = mkdtempSync(join(dir, 'kill-out-'));
    const [one, two, three] = [randomBytes(10_000), randomBytes(50_000), randomBytes(10_000)];
    writeFileSync(join(src, 'one.bin'), one);
    writeFileSync(join(src, 'three.bin'), three);
    const first = start(['receive', channel, '--consumer', 'k', '--out', out]);
    await joined(channel, 1);
    // The library sends, so that the test holds the second file's upload back.
    const second = new PassThrough();
    const sending = sendFiles(redis, channel, [join(src, 'one.bin'), { name: 'two.bin', stream: second, size: two.length }, join(src, 'three.bin')], {
      chunkSize: 1024,
    });
    second.write(two.subarray(0, 20_000));
    await waitUntil('the receiver is writing two.bin', () =>
      readdirSync(out).some((f) => f.startsWith('.two.bin.') && f.endsWith('.part') && statSync(join(out, f)).size > 0),
    );
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    expect(receivedNames(killed.stderr)).toEqual(['one.bin']);

    const restarted = start(['receive', channel, '--consumer', 'k', '--out', out]);
    second.end(two.subarray(20_000));
    await sending;
    await closeChannel(redis, channel);
    const r = await restarted.done;
    expect(r.code, r.stderr).toBe(0);
    // It starts again with the file it had not acknowledged, from that file's beginning.
    expect(receivedNames(r.stderr)).toEqual(['two.bin', 'three.bin']);
    // No temporary file is left behind: the restart wrote to the same one and renamed it.
    expect(readdirSync(out).sort()).toEqual(['one.bin', 'three.bin', 'two.bin']);
    expect([one, two, three].map((data, i) => readFileSync(join(out, ['one.bin', 'two.bin', 'three.bin'][i]!)).equals(data))).toEqual([true, true, true]);
  });

  it('a failing --exec command: exit 1, one line naming the file and the exit code; a restart delivers that file again', async () => {
    const channel = uniqueKey('fail');
    const src = mkdtempSync(join(dir, 'fail-src-'));
    const names = ['a.txt', 'b.txt', 'c.txt'];
    for (const name of names) writeFileSync(join(src, name), `this is ${name}\n`);
    expect((await run(['send', '--close', channel, ...names.map((name) => join(src, name))])).code).toBe(0);

    const out = mkdtempSync(join(dir, 'fail-out-'));
    const failing = await run(['receive', channel, '--consumer', 'f', '--exec', 'test "$RFS_NAME" != b.txt || exit 3; cat > "$OUT/$RFS_NAME"'], {
      env: { OUT: out },
    });
    expect(failing.code).toBe(1);
    expect(receivedNames(failing.stderr)).toEqual(['a.txt']);
    const line = expectOneLine(failing.stderr.replace(/^received .*\n/gm, ''));
    expect(line).toContain('"b.txt"');
    expect(line).toContain('code 3');
    expect(readdirSync(out)).toEqual(['a.txt']);

    const retry = await run(['receive', channel, '--consumer', 'f', '--exec', 'cat > "$OUT/$RFS_NAME"'], { env: { OUT: out } });
    expect(retry.code, retry.stderr).toBe(0);
    expect(receivedNames(retry.stderr)).toEqual(['b.txt', 'c.txt']);
    expect(readdirSync(out).sort()).toEqual(names);
    for (const name of names) expect(readFileSync(join(out, name), 'utf8')).toBe(`this is ${name}\n`);
  });

  it('Ctrl-C during send leaves the file being sent aborted and exits 130; receive skips that file; Ctrl-C stops receive', async () => {
    const channel = uniqueKey('sigint-send');
    const src = mkdtempSync(join(dir, 'sigint-send-'));
    writeFileSync(join(src, 'first.txt'), 'first\n');
    writeFileSync(join(src, 'last.txt'), 'last\n');
    // A FIFO: its producer (this test) decides when its bytes come.
    const fifo = join(src, 'live.log');
    execFileSync('mkfifo', [fifo]);
    const out = mkdtempSync(join(dir, 'sigint-send-out-'));
    const receiver = start(['receive', channel, '--consumer', 'r', '--out', out]);
    await joined(channel, 1);

    const sender = start(['send', '--chunk-size', '1k', channel, join(src, 'first.txt'), fifo, join(src, 'last.txt')]);
    const producer = createWriteStream(fifo);
    producer.on('error', () => {});
    producer.write(randomBytes(5000));
    let key = '';
    await waitUntil('send is uploading live.log', async () => {
      key = (await announced(channel))[1] ?? '';
      return key !== '' && ((await stateOf(key))?.size ?? 0) > 0;
    });
    sender.child.kill('SIGINT');
    // As in a terminal, the producer goes too (here once send has seen the signal).
    await waitUntil('send has seen the signal', () => sender.stderr().includes('interrupted'));
    producer.end();
    const s = await sender.done;
    expect(s.code).toBe(130);
    expect(expectOneLine(s.stderr)).toMatch(/interrupted by SIGINT while sending "live\.log": it is left aborted/);
    expect((await stat(redis, key)).state).toBe('aborted');
    expect(await announced(channel)).toHaveLength(2);

    // The receiver got the first file, skipped the aborted one, and waits for more.
    await waitUntil('receive has skipped live.log', () => receiver.stderr().includes('skipped'));
    receiver.child.kill('SIGINT');
    const r = await receiver.done;
    expect(r.code).toBe(130);
    expect(receivedNames(r.stderr)).toEqual(['first.txt']);
    expect(r.stderr).toMatch(/^redis-file: skipped "live\.log": its sender aborted it/m);
    expect(readdirSync(out)).toEqual(['first.txt']);
  });

  it('Ctrl-C during receive --exec stops the command and leaves the file unacknowledged', async () => {
    const channel = uniqueKey('sigint-receive');
    const src = mkdtempSync(join(dir, 'sigint-receive-'));
    writeFileSync(join(src, 'only.txt'), 'only\n');
    expect((await run(['send', '--close', channel, join(src, 'only.txt')])).code).toBe(0);
    const out = mkdtempSync(join(dir, 'sigint-receive-out-'));
    const busy = start(['receive', channel, '--consumer', 'c', '--exec', 'touch "$OUT/started"; sleep 60'], { env: { OUT: out } });
    await waitUntil('the command has started', () => existsSync(join(out, 'started')));
    busy.child.kill('SIGINT');
    const b = await busy.done;
    expect(b).toMatchObject({ code: 130, stderr: '' });

    const again = await run(['receive', channel, '--consumer', 'c', '--exec', 'cat > "$OUT/$RFS_NAME"'], { env: { OUT: out } });
    expect(again.code, again.stderr).toBe(0);
    expect(receivedNames(again.stderr)).toEqual(['only.txt']);
    expect(readFileSync(join(out, 'only.txt'), 'utf8')).toBe('only\n');
  });
});

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
    ['an empty key', ['rm', '']],
    ['a prefix the library refuses', ['stat', 'k', '--prefix', 'a{b}']],
    ['a prefix the library refuses, listing', ['ls', '*', '--prefix', 'a{b}']],
    ['a prefix the library refuses, receiving', ['receive', 'ch', '--consumer', 'r', '--exec', 'cat', '--prefix', 'a{']],
    ['receive with neither --out nor --exec', ['receive', 'ch', '--consumer', 'r']],
    ['receive with both --out and --exec', ['receive', 'ch', '--consumer', 'r', '--out', 'never-created', '--exec', 'cat']],
    ['receive without --consumer', ['receive', 'ch', '--out', 'never-created']],
    ['send without files', ['send', 'ch']],
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

  it('a missing file: exit 1, one line naming the key, no stack trace', async () => {
    const key = uniqueKey('missing');
    for (const args of [['get', key], ['cat', key], ['stat', key], ['get', key, join(dir, 'never.bin')]]) {
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(r.stdout.length).toBe(0);
      const line = expectOneLine(r.stderr);
      expect(line).toContain(JSON.stringify(key));
      expect(line).toContain('ERR_REDIS_FILE_NOT_FOUND');
    }
    expect(existsSync(join(dir, 'never.bin'))).toBe(false);
  });

  it('a local file that cannot be read: exit 1, one line, nothing stored', async () => {
    const key = uniqueKey('nosource');
    const r = await run(['put', join(dir, 'no-such-file'), key]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toContain('no-such-file');
    expect(await stateOf(key)).toBeUndefined();
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
    const file = join(dir, 'linger.bin');
    writeFileSync(file, randomBytes(100_000));
    const results = [
      await run(['put', '-', key], { ...debug, input: randomBytes(100_000) }),
      await run(['get', key], debug),
      await run(['cat', key], debug),
      await run(['ls', `${key}*`], debug),
      await run(['get', missing], debug),
      await run(['ls'], { env: { REDIS_FILE_DEBUG: '1', REDIS_URL: 'redis://127.0.0.1:1' } }),
      await run(['send', '--close', channel, file], debug),
      await run(['receive', channel, '--consumer', 'a', '--out', mkdtempSync(join(dir, 'linger-'))], debug),
      await run(['receive', channel, '--consumer', 'b', '--exec', 'exit 4'], debug),
    ];
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 1, 1, 0, 0, 1]);
    for (const r of results) expect(r.stderr).not.toContain('still running after the end');
  });

  it('a closed stdout (| head -c 10) ends get quietly', async () => {
    const key = uniqueKey('epipe');
    await put(redis, key, randomBytes(4 * 1024 * 1024));
    const reader = start(['get', key]);
    await waitUntil('get has written something', () => reader.stdout().length >= 10);
    reader.child.stdout.destroy();
    const r = await reader.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('Ctrl-C during put leaves the file aborted and exits 130', async () => {
    const key = uniqueKey('sigint');
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    // The pipe stays open: put waits for more input when the signal comes.
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put is writing', async () => {
      const s = await stateOf(key);
      return s?.state === 'writing' && s.size > 0;
    });
    writer.child.kill('SIGINT');
    const r = await writer.done;
    expect(r.code).toBe(130);
    expect(expectOneLine(r.stderr)).toMatch(/interrupted by SIGINT.*aborted/);
    expect((await stat(redis, key)).state).toBe('aborted');
    const read = await run(['get', key]);
    expect(read.code).toBe(1);
    expect(expectOneLine(read.stderr)).toContain('ERR_REDIS_FILE_ABORTED');
  });

  it('Ctrl-C during get into a file leaves no partial file; during cat it just ends', async () => {
    const key = uniqueKey('sigint-get');
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put is writing', async () => ((await stateOf(key))?.size ?? 0) > 0);

    const target = mkdtempSync(join(dir, 'sigint-'));
    const getter = start(['get', key, join(target, 'out.bin')]);
    const catter = start(['cat', key]);
    // Both follow the unfinished file: wait until they are reading it.
    await waitUntil('cat is following', () => catter.stdout().length > 0);
    await waitUntil('get has created its temporary file', () => readdirSync(target).length > 0);
    getter.child.kill('SIGINT');
    catter.child.kill('SIGINT');
    const [g, c] = await Promise.all([getter.done, catter.done]);
    expect(g.code).toBe(130);
    expect(c.code).toBe(130);
    expect(readdirSync(target)).toEqual([]);

    writer.child.stdin.end();
    expect((await writer.done).code).toBe(0);
  });

  it('Ctrl-C in a terminal, where the producer dies with put, still leaves the file aborted', async () => {
    // The terminal signals the whole pipeline: put's input ends at the moment its SIGINT comes.
    const key = uniqueKey('sigint-eof');
    const writer = start(['put', '-', key]);
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put has created the file', async () => (await stateOf(key))?.state === 'writing');
    writer.child.kill('SIGINT');
    writer.child.stdin.end();
    const r = await writer.done;
    expect(r.code).toBe(130);
    expect((await stat(redis, key)).state).toBe('aborted');
  });
});
