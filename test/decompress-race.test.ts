/**
 * `decompress` with `follow: false` on a file whose writer completes it while the read is under
 * way: the read reaches the end record, and the gzip data must then be whole. The reader's
 * connection goes through a proxy, stalled once the reader has found the file still being written,
 * so that the writer completes it before the reader reads on (standalone: one server to proxy).
 */

import { finished } from 'node:stream/promises';
import { URL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import {
  closeAll,
  connect,
  connectSubject,
  sharedRedisUrl,
  subject,
  subjectReady,
  uniqueKey,
} from './helpers/clients.js';
import { startProxy } from './helpers/proxy.js';
import { bytes } from './helpers/streams.js';

const redis = connect();
afterAll(closeAll);

describe('decompress, follow: false, racing the writer', () => {
  it('a read that began on a file still being written fails on a truncated gzip once the file completes', async () => {
    const proxy = await startProxy(Number(new URL(sharedRedisUrl()).port));
    try {
      const readerClient = connectSubject(proxy.url);
      await subjectReady(readerClient);
      const key = uniqueKey('gztruncating');
      // A gzip member cut short: the file ends inside it.
      const stored = gzipSync(bytes(20_000, 3)).subarray(0, 1000);
      const writer = createRedisWriteStream(subject(redis), key, {
        contentEncoding: 'gzip',
        chunkSize: 64,
        flushInterval: 0,
      });
      writer.write(stored.subarray(0, 100));
      await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
      const reader = createRedisReadStream(readerClient, key, { decompress: true, follow: false });
      const opened = new Promise<string>((resolve) =>
        reader.once('file', (file: { state: string }) => {
          // Nothing more reaches the reader until the writer has completed the file.
          proxy.stall();
          resolve(file.state);
        }),
      );
      reader.on('data', () => {});
      const read = finished(reader);
      read.catch(() => {});
      expect(await opened).toBe('writing');
      writer.end(stored.subarray(100));
      await finished(writer);
      proxy.resume();
      await expect(read).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_DECODE' });
      expect(reader.deliveredBytes).toBe(stored.length);
    } finally {
      proxy.resume();
      await proxy.close();
    }
  });
});
