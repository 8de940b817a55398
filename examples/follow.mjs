// Read a file while it is being written: the reader starts before the file even exists
// (`waitForCreate`), and gets every piece as soon as Redis has it, long before the writer ends.
//
//   node examples/follow.mjs
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisReadStream, createRedisWriteStream, remove } from 'redis-file-stream';
import { connect } from './connect.mjs';

const redis = await connect(); // REDIS_URL, or redis://127.0.0.1:6379
const key = `${process.env.EXAMPLE_KEY_PREFIX ?? 'example:'}follow`;
const t0 = performance.now();
const log = (who, text) => console.log(`${String(Math.round(performance.now() - t0)).padStart(5)} ms  ${who}: ${text}`);

// Chunks are stored when they are full: with 16-byte chunks every 16-byte piece is one chunk.
const CHUNK = 16;
const pieces = [1, 2, 3, 4].map((i) => `piece ${i} of 4`.padEnd(CHUNK - 1) + '\n');

await remove(redis, key); // a reader would read a file left by an earlier run at once

async function read() {
  const reader = createRedisReadStream(redis, key, { waitForCreate: 10_000 });
  for await (const data of reader) {
    for (const line of data.toString().split('\n').filter(Boolean))
      log('reader', `got ${JSON.stringify(line.trimEnd())}`);
  }
  log('reader', 'end');
}

async function write() {
  await sleep(200); // the reader is already waiting
  const writer = createRedisWriteStream(redis, key, { chunkSize: CHUNK });
  for (const piece of pieces) {
    writer.write(piece);
    log('writer', `wrote ${JSON.stringify(piece.trimEnd())}`);
    await sleep(300);
  }
  writer.end();
  await finished(writer); // every chunk and the end record are stored
  log('writer', 'finished');
}

await Promise.all([read(), write()]);
console.log('ok');
await redis.quit();
