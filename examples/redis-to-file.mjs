// Read a file stored in Redis back into a local file.
//
//   node examples/redis-to-file.mjs <key> <path>
//
// The key is looked up under the prefix EXAMPLE_KEY_PREFIX (default 'example:'), as
// `node examples/file-to-redis.mjs <path> <key>` stored it.
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createRedisReadStream } from 'redis-file-stream';
import { connect } from './connect.mjs';

const [name, path] = process.argv.slice(2);
if (!name || !path) {
  console.error('usage: node examples/redis-to-file.mjs <key> <path>');
  process.exit(2);
}
const key = (process.env.EXAMPLE_KEY_PREFIX ?? 'example:') + name;
const redis = await connect(); // REDIS_URL, or redis://127.0.0.1:6379

// Every chunk is checked on the way out (its number, its size, and the CRC-32 of the whole
// file): a missing, aborted or damaged file fails the pipeline instead of writing a bad copy.
// A file that is still being written is followed until its writer finishes.
const reader = createRedisReadStream(redis, key);
await pipeline(reader, fs.createWriteStream(path));

console.log(`wrote ${reader.deliveredBytes} bytes from ${key} to ${path}`);
console.log('ok');
await redis.quit();
