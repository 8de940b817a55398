/**
 * `redis-file send` and `receive`: files in order to many receivers, --out and --exec, a receiver
 * killed and restarted, a failing command.
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { closeChannel, sendFiles, stat } from '../src/index.js';
import {
  announced,
  expectOneLine,
  joined,
  receivedNames,
  run,
  start,
  stateOf,
  useTempDir,
  waitForStderrLine,
  waitUntil,
} from './helpers/cli.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';

const redis = connect();
const dir = useTempDir();
afterAll(closeAll);

describe('send and receive (channels)', () => {
  it('sends files in order to two receivers started before it; with --consumers 2 each file is deleted once both have it', async () => {
    const channel = uniqueKey('chan');
    const src = mkdtempSync(join(dir(), 'send-'));
    const text = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `row ${i},${i % 7}\n`).join(''));
    const files: [string, Buffer][] = [
      ['a.bin', randomBytes(700_000)],
      ['b.txt', text],
      ['c.csv.gz', gzipSync(text)],
      ['d.empty', Buffer.alloc(0)],
    ];
    for (const [name, data] of files) writeFileSync(join(src, name), data);
    // The output directories do not exist yet: receive creates them.
    const outs = ['r1', 'r2'].map((name) => join(dir(), `${name}-${randomBytes(4).toString('hex')}`, 'files'));
    const receivers = outs.map((out, i) => start(['receive', channel, '--consumer', `r${i + 1}`, '--out', out]));
    await joined(redis, channel, 2);

    const sent = await run([
      'send',
      channel,
      '--consumers',
      '2',
      '--chunk-size',
      '64k',
      '--close',
      ...files.map(([name]) => join(src, name)),
    ]);
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
    const keys = await announced(redis, channel);
    expect(keys).toHaveLength(files.length);
    for (const key of keys) expect(await stateOf(redis, key)).toBeUndefined();
    expect((await run(['ls', `${channel}/*`])).stdout.length).toBe(0);

    expect(await run(['rm-channel', channel])).toMatchObject({ code: 0, stderr: '' });
    const again = await run(['rm-channel', channel]);
    expect(again.code).toBe(1);
    expect(expectOneLine(again.stderr)).toContain(JSON.stringify(channel));
    expect((await run(['rm-channel', '--force', channel])).code).toBe(0);
  });

  it('--exec pipes each file to a command, its name in $RFS_NAME; --decompress gunzips and drops the .gz', async () => {
    const channel = uniqueKey('exec');
    const src = mkdtempSync(join(dir(), 'exec-src-'));
    const log = Buffer.from(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join(''));
    const csv = Buffer.from(Array.from({ length: 500 }, (_, i) => `${i},${i * 2}\n`).join(''));
    writeFileSync(join(src, 'app.log'), log);
    writeFileSync(join(src, 'data.csv.gz'), gzipSync(csv));
    // Sent before any receiver joins: a receiver that comes late gets every file still held.
    const sent = await run(['send', '--gzip', '--close', channel, join(src, 'app.log'), join(src, 'data.csv.gz')]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    const keys = await announced(redis, channel);
    // --gzip compresses on the way in, except a file already gzipped, which is sent as is.
    expect(await stat(redis, keys[0]!)).toMatchObject({ contentEncoding: 'gzip' });
    expect(await stat(redis, keys[1]!)).toMatchObject({
      contentEncoding: 'gzip',
      size: statSync(join(src, 'data.csv.gz')).size,
    });

    const out = mkdtempSync(join(dir(), 'exec-out-'));
    const copy = await run(
      ['receive', channel, '--consumer', 'copier', '--decompress', '--exec', 'cat > "$OUT/$RFS_NAME"'],
      { env: { OUT: out } },
    );
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

  it('sends a file at the size it has when its turn comes (it grew once send had looked at it), and a file of /proc to its end', async () => {
    const channel = uniqueKey('grows');
    const src = mkdtempSync(join(dir(), 'grows-src-'));
    // A FIFO first: its producer (this test) decides when send goes on to the next file.
    const fifo = join(src, 'first.log');
    execFileSync('mkfifo', [fifo]);
    const log = join(src, 'app.log');
    writeFileSync(log, 'written before send started\n');
    const sender = start(['send', '--close', channel, fifo, log, '/proc/version']);
    // Open once send opened it for reading, after it looked at every file.
    const producer = await open(fifo, 'w');
    appendFileSync(log, 'written once send had looked at it\n');
    await producer.writeFile('the first file\n');
    await producer.close();
    const s = await sender.done;
    expect(s).toMatchObject({ code: 0, stderr: '' });
    const keys = await announced(redis, channel);
    expect(keys).toHaveLength(3);
    expect(await stat(redis, keys[1]!)).toMatchObject({ state: 'complete', size: statSync(log).size });

    const out = mkdtempSync(join(dir(), 'grows-out-'));
    const r = await run(['receive', channel, '--consumer', 'r', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(out, 'first.log'), 'utf8')).toBe('the first file\n');
    expect(readFileSync(join(out, 'app.log')).equals(readFileSync(log))).toBe(true);
    expect(readFileSync(join(out, 'version')).equals(readFileSync('/proc/version'))).toBe(true);
  });

  it('--out writes names that take all 255 bytes a name may, and -d keeps the names ..gz and ...gz', async () => {
    const channel = uniqueKey('names');
    const src = mkdtempSync(join(dir(), 'names-src-'));
    const out = join(dir(), `names-out-${randomBytes(4).toString('hex')}`);
    const files: [string, Buffer][] = [
      ['b'.repeat(255), Buffer.from('long')],
      [`${'字'.repeat(84)}.z`, Buffer.from('wide')],
      ['..gz', gzipSync('two dots')],
      ['...gz', gzipSync('three dots')],
    ];
    for (const [name, data] of files) writeFileSync(join(src, name), data);
    const sent = await run(['send', '--close', channel, ...files.map(([name]) => join(src, name))]);
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    const r = await run(['receive', channel, '--consumer', 'names', '--decompress', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(files.map(([name]) => name).sort());
    expect(readFileSync(join(out, files[0]![0]), 'utf8')).toBe('long');
    expect(readFileSync(join(out, files[1]![0]), 'utf8')).toBe('wide');
    expect(readFileSync(join(out, '..gz'), 'utf8')).toBe('two dots');
    expect(readFileSync(join(out, '...gz'), 'utf8')).toBe('three dots');
  });

  it('an upload held back by --max-redis-memory for 5 s says so (also with --quiet) and Ctrl-C still stops it', async () => {
    const channel = uniqueKey('held');
    const path = join(dir(), `held-${randomBytes(4).toString('hex')}.bin`);
    writeFileSync(path, randomBytes(1000));
    // A limit of 1 KiB: below what any Redis uses, so no memory is ever freed enough.
    const send = start(['send', channel, path, '--max-redis-memory', '1k', '--quiet']);
    const line = await waitForStderrLine(send, /held back/);
    expect(line).toMatch(
      /^redis-file: send "held-.*\.bin": held back for [5-9] s by --max-redis-memory 1\.0 KiB: Redis uses [\d.]+ [KM]iB, and the next chunk needs [\d.]+ [KM]iB below the limit; the upload goes on once memory is freed$/,
    );
    send.child.kill('SIGINT');
    const r = await send.done;
    expect(r.code).toBe(130);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(2);
    const [key] = await announced(redis, channel);
    expect((await stateOf(redis, key!))?.state).toBe('aborted');
  });

  it('a file removed before the receiver got to it: one skipped line, also with --quiet, and the others received', async () => {
    const channel = uniqueKey('gone');
    const src = mkdtempSync(join(dir(), 'gone-'));
    writeFileSync(join(src, 'kept.txt'), 'kept\n');
    writeFileSync(join(src, 'removed.txt'), 'removed\n');
    const sent = await sendFiles(redis, channel, [join(src, 'removed.txt'), join(src, 'kept.txt')]);
    await closeChannel(redis, channel);
    expect((await run(['rm', sent[0]!.key])).code).toBe(0);
    const out = join(dir(), `gone-${randomBytes(4).toString('hex')}`);
    const received = await run(['receive', channel, '--consumer', 'r', '--out', out, '--quiet']);
    expect(received.code).toBe(0);
    expect(received.stdout.length).toBe(0);
    expect(received.stderr).toBe('redis-file: skipped "removed.txt": it is gone from Redis (removed, or expired)\n');
    expect(readdirSync(out)).toEqual(['kept.txt']);
  });

  it('a receiver killed (SIGKILL) in the middle of a file and started again with the same --consumer ends with every file', async () => {
    const channel = uniqueKey('kill');
    const src = mkdtempSync(join(dir(), 'kill-src-'));
    const out = mkdtempSync(join(dir(), 'kill-out-'));
    const [one, two, three] = [randomBytes(10_000), randomBytes(50_000), randomBytes(10_000)];
    writeFileSync(join(src, 'one.bin'), one);
    writeFileSync(join(src, 'three.bin'), three);
    const first = start(['receive', channel, '--consumer', 'k', '--out', out]);
    await joined(redis, channel, 1);
    // The library sends, so that the test holds the second file's upload back.
    const second = new PassThrough();
    const sending = sendFiles(
      redis,
      channel,
      [join(src, 'one.bin'), { name: 'two.bin', stream: second, size: two.length }, join(src, 'three.bin')],
      {
        chunkSize: 1024,
      },
    );
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
    expect(
      [one, two, three].map((data, i) => readFileSync(join(out, ['one.bin', 'two.bin', 'three.bin'][i]!)).equals(data)),
    ).toEqual([true, true, true]);
  });

  it('a failing --exec command: exit 1, one line naming the file and the exit code; a restart delivers that file again', async () => {
    const channel = uniqueKey('fail');
    const src = mkdtempSync(join(dir(), 'fail-src-'));
    const names = ['a.txt', 'b.txt', 'c.txt'];
    for (const name of names) writeFileSync(join(src, name), `this is ${name}\n`);
    expect((await run(['send', '--close', channel, ...names.map((name) => join(src, name))])).code).toBe(0);

    const out = mkdtempSync(join(dir(), 'fail-out-'));
    const failing = await run(
      ['receive', channel, '--consumer', 'f', '--exec', 'test "$RFS_NAME" != b.txt || exit 3; cat > "$OUT/$RFS_NAME"'],
      {
        env: { OUT: out },
      },
    );
    expect(failing.code).toBe(1);
    expect(receivedNames(failing.stderr)).toEqual(['a.txt']);
    const line = expectOneLine(failing.stderr.replace(/^received .*\n/gm, ''));
    expect(line).toContain('"b.txt"');
    expect(line).toContain('code 3');
    expect(readdirSync(out)).toEqual(['a.txt']);

    const retry = await run(['receive', channel, '--consumer', 'f', '--exec', 'cat > "$OUT/$RFS_NAME"'], {
      env: { OUT: out },
    });
    expect(retry.code, retry.stderr).toBe(0);
    expect(receivedNames(retry.stderr)).toEqual(['b.txt', 'c.txt']);
    expect(readdirSync(out).sort()).toEqual(names);
    for (const name of names) expect(readFileSync(join(out, name), 'utf8')).toBe(`this is ${name}\n`);
  });
});
