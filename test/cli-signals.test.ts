/**
 * `redis-file` interrupted by SIGINT (Ctrl-C) or SIGTERM: an upload is left aborted, a download leaves
 * no partial file, a receiver leaves its file unacknowledged, and the exit code says which signal.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import {
  announced,
  expectOneLine,
  holdsOpen,
  joined,
  receivedNames,
  run,
  start,
  stateOf,
  useTempDir,
  waitUntil,
} from './helpers/cli.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';

const redis = connect();
const dir = useTempDir();
afterAll(closeAll);

describe('Ctrl-C', () => {
  it('Ctrl-C during put leaves the file aborted and exits 130', async () => {
    const key = uniqueKey('sigint');
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    // The pipe stays open: put waits for more input when the signal comes.
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put is writing', async () => {
      const s = await stateOf(redis, key);
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
    await waitUntil('the put is writing', async () => ((await stateOf(redis, key))?.size ?? 0) > 0);

    const target = mkdtempSync(join(dir(), 'sigint-'));
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
    await waitUntil('the put has created the file', async () => (await stateOf(redis, key))?.state === 'writing');
    writer.child.kill('SIGINT');
    writer.child.stdin.end();
    const r = await writer.done;
    expect(r.code).toBe(130);
    expect((await stat(redis, key)).state).toBe('aborted');
  });
});

describe('Ctrl-C on channels', () => {
  it('Ctrl-C during send leaves the file being sent aborted and exits 130; receive skips that file; Ctrl-C stops receive', async () => {
    const channel = uniqueKey('sigint-send');
    const src = mkdtempSync(join(dir(), 'sigint-send-'));
    writeFileSync(join(src, 'first.txt'), 'first\n');
    writeFileSync(join(src, 'last.txt'), 'last\n');
    // A FIFO: its producer (this test) decides when its bytes come.
    const fifo = join(src, 'live.log');
    execFileSync('mkfifo', [fifo]);
    const out = mkdtempSync(join(dir(), 'sigint-send-out-'));
    const receiver = start(['receive', channel, '--consumer', 'r', '--out', out]);
    await joined(redis, channel, 1);

    const sender = start(['send', '--chunk-size', '1k', channel, join(src, 'first.txt'), fifo, join(src, 'last.txt')]);
    const producer = createWriteStream(fifo);
    producer.on('error', () => {});
    producer.write(randomBytes(5000));
    let key = '';
    await waitUntil('send is uploading live.log', async () => {
      key = (await announced(redis, channel))[1] ?? '';
      return key !== '' && ((await stateOf(redis, key))?.size ?? 0) > 0;
    });
    sender.child.kill('SIGINT');
    // As in a terminal, the producer goes too (here once send has seen the signal).
    await waitUntil('send has seen the signal', () => sender.stderr().includes('interrupted'));
    producer.end();
    const s = await sender.done;
    expect(s.code).toBe(130);
    expect(expectOneLine(s.stderr)).toMatch(/interrupted by SIGINT while sending "live\.log": it is left aborted/);
    expect((await stat(redis, key)).state).toBe('aborted');
    expect(await announced(redis, channel)).toHaveLength(2);

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
    const src = mkdtempSync(join(dir(), 'sigint-receive-'));
    writeFileSync(join(src, 'only.txt'), 'only\n');
    expect((await run(['send', '--close', channel, join(src, 'only.txt')])).code).toBe(0);
    const out = mkdtempSync(join(dir(), 'sigint-receive-out-'));
    const busy = start(['receive', channel, '--consumer', 'c', '--exec', 'touch "$OUT/started"; sleep 60'], {
      env: { OUT: out },
    });
    await waitUntil('the command has started', () => existsSync(join(out, 'started')));
    busy.child.kill('SIGINT');
    const b = await busy.done;
    expect(b).toMatchObject({ code: 130, stderr: '' });

    const again = await run(['receive', channel, '--consumer', 'c', '--exec', 'cat > "$OUT/$RFS_NAME"'], {
      env: { OUT: out },
    });
    expect(again.code, again.stderr).toBe(0);
    expect(receivedNames(again.stderr)).toEqual(['only.txt']);
    expect(readFileSync(join(out, 'only.txt'), 'utf8')).toBe('only\n');
  });
});

describe('SIGTERM', () => {
  it('during put from a slow stdin: the file is left aborted, exit 143', async () => {
    const key = uniqueKey('sigterm-put');
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put is writing', async () => ((await stateOf(redis, key))?.size ?? 0) > 0);
    writer.child.kill('SIGTERM');
    const r = await writer.done;
    expect(r.code).toBe(143);
    const line = expectOneLine(r.stderr);
    expect(line).toBe(
      `redis-file: File ${JSON.stringify(key)}: put interrupted by SIGTERM: the file is marked aborted`,
    );
    expect((await stat(redis, key)).state).toBe('aborted');
  });

  it('during put of several files: the one being stored is left aborted, the next ones are not stored', async () => {
    const src = mkdtempSync(join(dir(), 'sigterm-several-'));
    writeFileSync(join(src, 'a.txt'), 'a\n');
    writeFileSync(join(src, 'c.txt'), 'c\n');
    // A FIFO: its producer (this test) decides when its bytes come.
    execFileSync('mkfifo', [join(src, 'b.log')]);
    const prefix = `${uniqueKey('sigterm-several')}/`;
    const writer = start([
      'put',
      '--chunk-size',
      '1k',
      join(src, 'a.txt'),
      join(src, 'b.log'),
      join(src, 'c.txt'),
      prefix,
    ]);
    const producer = createWriteStream(join(src, 'b.log'));
    producer.on('error', () => {});
    producer.write(randomBytes(5000));
    await waitUntil('put is storing b.log', async () => ((await stateOf(redis, `${prefix}b.log`))?.size ?? 0) > 0);
    writer.child.kill('SIGTERM');
    await waitUntil('put has seen the signal', () => writer.stderr().includes('interrupted'));
    producer.end();
    const r = await writer.done;
    expect(r.code).toBe(143);
    expect(expectOneLine(r.stderr)).toBe(
      `redis-file: File ${JSON.stringify(`${prefix}b.log`)}: put interrupted by SIGTERM: the file is marked aborted; ` +
        '1 of 3 files stored before it, the others not',
    );
    expect((await stat(redis, `${prefix}a.txt`)).state).toBe('complete');
    expect((await stat(redis, `${prefix}b.log`)).state).toBe('aborted');
    expect(await stateOf(redis, `${prefix}c.txt`)).toBeUndefined();
  });

  it('during put and send of a FIFO that no writer has opened yet: exit 143', async () => {
    const src = mkdtempSync(join(dir(), 'sigterm-unopened-'));
    const [a, b] = [join(src, 'a.txt'), join(src, 'b.log')];
    writeFileSync(a, 'a\n');
    execFileSync('mkfifo', [b]);
    const prefix = `${uniqueKey('sigterm-unopened')}/`;
    const channel = uniqueKey('sigterm-unopened');
    const writer = start(['put', a, b, prefix]);
    const sender = start(['send', '-q', channel, a, b]);
    try {
      // Each has b.log open, waiting for its writer: put holds the FIFO, send has announced it.
      await waitUntil('put has b.log open', () => holdsOpen(writer.child.pid!, b));
      await waitUntil('send has announced b.log', async () =>
        (await announced(redis, channel)).some((file) => file.endsWith('/b.log')),
      );
      writer.child.kill('SIGTERM');
      sender.child.kill('SIGTERM');
      const [w, s] = await Promise.all([writer.done, sender.done]);
      expect(w.code, w.stderr).toBe(143);
      expect(expectOneLine(w.stderr)).toBe(
        `redis-file: File ${JSON.stringify(`${prefix}b.log`)}: put interrupted by SIGTERM: nothing was stored; ` +
          '1 of 2 files stored before it, the others not',
      );
      expect(s.code, s.stderr).toBe(143);
      expect(expectOneLine(s.stderr)).toBe(
        `redis-file: send ${JSON.stringify(channel)} interrupted by SIGTERM while sending "b.log": it is left aborted ` +
          '(receivers skip it); 1 of 2 files sent before it',
      );
    } finally {
      writer.child.kill('SIGKILL');
      sender.child.kill('SIGKILL');
    }
  });

  it('during cat of a file being written: exit 143, and the writer carries on', async () => {
    const key = uniqueKey('sigterm-cat');
    const writer = start(['put', '--chunk-size', '1k', '-', key]);
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put is writing', async () => ((await stateOf(redis, key))?.size ?? 0) > 0);
    const reader = start(['cat', key]);
    await waitUntil('cat is following the file', () => reader.stdout().length > 0);
    reader.child.kill('SIGTERM');
    const r = await reader.done;
    expect(r).toMatchObject({ code: 143, stderr: '' });
    writer.child.stdin.end(randomBytes(100));
    expect(await writer.done).toMatchObject({ code: 0, stderr: '' });
    expect((await stat(redis, key)).state).toBe('complete');
  });

  it('during get --wait-for-create into a file: exit 143, and no partial file', async () => {
    const key = uniqueKey('sigterm-wait');
    const target = mkdtempSync(join(dir(), 'sigterm-wait-'));
    // Far longer than the test may take: the command must end on the signal, not on the wait.
    const getter = start(['get', '--wait-for-create', '10m', key, join(target, 'out.bin')]);
    await waitUntil('get has created its temporary file', () => readdirSync(target).length > 0);
    getter.child.kill('SIGTERM');
    const r = await getter.done;
    expect(r).toMatchObject({ code: 143, stderr: '' });
    expect(readdirSync(target)).toEqual([]);
  });

  it('during receive waiting for a file: exit 143', async () => {
    const channel = uniqueKey('sigterm-receive');
    const receiver = start([
      'receive',
      channel,
      '--consumer',
      'r',
      '--out',
      mkdtempSync(join(dir(), 'sigterm-receive-')),
    ]);
    await joined(redis, channel, 1);
    receiver.child.kill('SIGTERM');
    expect(await receiver.done).toMatchObject({ code: 143, stderr: '' });
  });
});
