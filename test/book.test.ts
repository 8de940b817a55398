/**
 * The test of "Redis in Action" (section 6.6) for its log distribution, with real processes: files
 * of 1, 10,000 and 100,000 lines, one of them gzipped, sent over a channel by a sender process to
 * 10 receiver processes, each of which must get every line of every file. Then Redis is clean:
 * each file went with its tenth acknowledgement.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { removeChannel } from '../src/index.js';
import { closeAll, connectAny, redisUrlForProcesses, subject, uniqueKey } from './helpers/clients.js';
import { fileKeysOf } from './helpers/keys.js';
import { finish, killAll, receiver, sender } from './helpers/processes.js';

const redis = connectAny();
const dir = mkdtempSync(join(tmpdir(), 'rfs-book-'));
afterAll(async () => {
  killAll();
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const log = (lines: number, tag: string): string =>
  Array.from({ length: lines }, (_, i) => `${tag},${i},2026-11-30,GET /item/${i % 977}`).join('\n') + '\n';

describe('the book test', () => {
  it('files of 1, 10,000 and 100,000 lines, one gzipped, reach 10 receiver processes whole', async () => {
    const channel = uniqueKey('book');
    const texts = { 'one.log': log(1, 'one'), 'ten.log': log(10_000, 'ten'), 'hundred.log.gz': log(100_000, 'hun') };
    const paths = Object.entries(texts).map(([name, text]) => {
      const path = join(dir, name);
      writeFileSync(path, name.endsWith('.gz') ? gzipSync(text) : text);
      return path;
    });
    // The receivers first, each a process standing for a machine; then the sender.
    const receivers = Array.from({ length: 10 }, (_, i) =>
      receiver(redisUrlForProcesses(), channel, `r${i}`, { decompress: true }),
    );
    await Promise.all(receivers.map((r) => r.waitFor((e) => e.event === 'ready')));
    const send = sender(redisUrlForProcesses(), channel, {
      files: paths.map((path) => ({ path })),
      send: { consumers: 10, chunkSize: 64 * 1024 },
      close: true,
    });
    await send.waitFor((e) => e.event === 'closed', 'the close');
    const started = send.all('started');
    expect(started.map((e) => e.name)).toEqual(Object.keys(texts));
    for (const [i, r] of receivers.entries()) {
      const files = await finish(r);
      const got = files.map((f) => ({
        name: f.name,
        key: f.key,
        lines: f.lines,
        sha256: f.sha256,
        offset: f.offset,
        contentEncoding: f.contentEncoding,
      }));
      expect(got, `receiver r${i}`).toEqual(
        Object.entries(texts).map(([name, text], n) => ({
          name,
          key: started[n]!.key,
          lines: text.split('\n').length - 1,
          sha256: sha256(text),
          offset: 0,
          contentEncoding: name.endsWith('.gz') ? 'gzip' : 'identity',
        })),
      );
    }
    expect((await send.exited).code).toBe(0);
    for (const { key } of started) expect(await redis.exists(fileKeysOf(key as string).meta)).toBe(0);
    expect(await removeChannel(subject(redis), channel)).toBe(true);
  }, 120_000);
});
