/**
 * A sender process killed (SIGKILL) in the middle of a file: once its lease is stale, the first
 * receiver to notice marks the file aborted (atomically, by the server's clock), so that every
 * receiver gets ERR_REDIS_FILE_ABORTED for that file and goes on, and one that comes later fails at
 * once instead of waiting. A sender run again uploads the same name under a new key, which every
 * receiver gets whole; the dead file goes with the receivers' acknowledgements.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { removeChannel, stat } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { filesPattern } from './helpers/keys.js';
import { finish, killAll, receiver, sender } from './helpers/processes.js';
import { bytes } from './helpers/streams.js';

const redis = connect();
const dir = mkdtempSync(join(tmpdir(), 'rfs-sender-crash-'));
afterAll(async () => {
  killAll();
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function file(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

describe('a sender process killed in the middle of a file', () => {
  it('its file is marked aborted once the lease lapses; receivers go on, and a sender run again delivers it', async () => {
    const channel = uniqueKey('sender-crash');
    const url = sharedRedisUrl();
    const [first, big, last] = [bytes(10_000, 1), bytes(2 * 1024 * 1024, 2), bytes(3000, 3)];
    const paths = { first: file('first.bin', first), big: file('big.bin', big), last: file('last.bin', last) };
    const send = { consumers: 3, chunkSize: 64 * 1024, heartbeatInterval: 100, ttl: 600 };
    const early = [receiver(url, channel, 'r1'), receiver(url, channel, 'r2')];

    const dying = sender(url, channel, {
      files: [{ path: paths.first }, { path: paths.big, stallAfter: 700_000 }],
      send,
    });
    const started = await dying.waitFor((e) => e.event === 'started' && e.name === 'big.bin');
    const key = started.key as string;
    // The heartbeat recorded the bytes stored: the upload is well under way.
    await eventually(async () => (await stat(subject(redis), key)).size >= 640 * 1024, 'a heartbeat to record 640 KiB');
    // A live sender waiting on its source keeps its file, however long it waits (here five
    // times the time after which a silent one is taken for dead): time is the subject.
    await sleep(1500);
    expect((await stat(subject(redis), key)).state).toBe('writing');
    expect(early.flatMap((r) => r.all('file')).filter((f) => f.name === 'big.bin')).toEqual([]);
    await dying.kill();

    // Both receivers were following it: they learn it is dead, and one of them marked it so.
    for (const r of early) {
      const failed = await r.waitFor((e) => e.event === 'file' && e.name === 'big.bin', 'the dead file');
      expect(failed).toMatchObject({ key, error: 'ERR_REDIS_FILE_ABORTED' });
    }
    expect((await stat(subject(redis), key)).state).toBe('aborted');
    // A receiver that comes later finds it aborted.
    const late = receiver(url, channel, 'r3');
    expect(await late.waitFor((e) => e.event === 'file' && e.name === 'big.bin', 'the dead file')).toMatchObject({
      key,
      error: 'ERR_REDIS_FILE_ABORTED',
    });

    // The sender, run again: the same name, a new key.
    const again = sender(url, channel, { files: [{ path: paths.big }, { path: paths.last }], send, close: true });
    await again.waitFor((e) => e.event === 'closed', 'the close');
    const rerun = again.all('started');
    expect(rerun.map((e) => e.name)).toEqual(['big.bin', 'last.bin']);
    expect(rerun[0]!.key).not.toBe(key);
    for (const r of [...early, late]) {
      expect((await finish(r)).map((f) => [f.name, f.error ?? f.sha256])).toEqual([
        ['first.bin', sha256(first)],
        ['big.bin', 'ERR_REDIS_FILE_ABORTED'],
        ['big.bin', sha256(big)],
        ['last.bin', sha256(last)],
      ]);
    }
    expect((await again.exited).code).toBe(0);
    // Every file, the dead one included, went with the third acknowledgement.
    expect(await redis.keys(filesPattern(`${channel}/*`))).toEqual([]);
    expect(await removeChannel(subject(redis), channel)).toBe(true);
  }, 120_000);
});
