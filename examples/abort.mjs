// Cancel with an AbortSignal: a reader following a file that nobody finishes, and the writer.
//
//   node examples/abort.mjs
import { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createRedisReadStream, createRedisWriteStream, remove, stat } from 'redis-file-stream';
import { connect } from './connect.mjs';

const redis = await connect(); // REDIS_URL, or redis://127.0.0.1:6379
const key = `${process.env.EXAMPLE_KEY_PREFIX ?? 'example:'}abort`;

await remove(redis, key); // the reader below must not find the aborted file of an earlier run

// A writer that stores one 16-byte chunk, then stalls without ever calling end().
const controller = new AbortController();
const writer = createRedisWriteStream(redis, key, { chunkSize: 16, signal: controller.signal });
writer.write('the first chunk\n');

// The reader gets that chunk, then would wait for the writer for as long as it stays alive
// (its heartbeats keep the reader's idleTimeout from firing). The signal bounds the wait.
const reader = createRedisReadStream(redis, key, { waitForCreate: 5000 });
const print = new Writable({
  write(data, _encoding, callback) {
    console.log(`reader got ${JSON.stringify(data.toString())}`);
    callback();
  },
});
try {
  await pipeline(reader, print, { signal: AbortSignal.timeout(1000) });
} catch (err) {
  console.log(`reader: ${err.name}: ${err.message}`); // AbortError: The operation was aborted
}

// Aborting the writer marks the file aborted: it never reads as complete, and readers fail
// with ERR_REDIS_FILE_ABORTED.
controller.abort();
await finished(writer).catch((err) => console.log(`writer: ${err.name}: ${err.message}`));
console.log(`stat: ${(await stat(redis, key)).state}`); // 'aborted'
await createRedisReadStream(redis, key)
  .toArray()
  .catch((err) => console.log(`reading it now: ${err.code}`));

console.log('ok');
await redis.quit();
