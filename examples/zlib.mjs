// Gzip in Redis, two ways:
//  1. `compress: true` gzips on the way in, `decompress: true` gunzips on the way out;
//  2. bytes that are gzipped already (a .gz file) are stored as they are, declared with
//     `contentEncoding: 'gzip'`, read raw and gunzipped by the caller.
//
//   node examples/zlib.mjs [path]      (default: this file)
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { createRedisReadStream, createRedisWriteStream, stat } from 'redis-file-stream';
import { connect } from './connect.mjs';

const redis = await connect(); // REDIS_URL, or redis://127.0.0.1:6379
const prefix = process.env.EXAMPLE_KEY_PREFIX ?? 'example:';
const path = process.argv[2] ?? fileURLToPath(import.meta.url);
const original = fs.readFileSync(path);
const collect = async (source) => Buffer.concat(await source.toArray());

// 1. Compressed by the library.
const key1 = `${prefix}zlib:compressed`;
await pipeline(fs.createReadStream(path), createRedisWriteStream(redis, key1, { compress: true, overwrite: true }));
const stat1 = await stat(redis, key1);
const back1 = await collect(createRedisReadStream(redis, key1, { decompress: true }));
console.log(`compress: ${original.length} bytes stored as ${stat1.size} bytes of ${stat1.contentEncoding}`);
console.log(`compress: read with decompress matches the original: ${back1.equals(original)}`);

// 2. Gzipped before, stored as is.
const key2 = `${prefix}zlib:pre-gzipped`;
const gzipped = zlib.gzipSync(original);
await pipeline(
  Readable.from([gzipped]),
  createRedisWriteStream(redis, key2, { overwrite: true, contentEncoding: 'gzip' }),
);
const stat2 = await stat(redis, key2);
const raw = await collect(createRedisReadStream(redis, key2));
let back2;
await pipeline(createRedisReadStream(redis, key2), zlib.createGunzip(), async (text) => (back2 = await collect(text)));
console.log(`pre-gzipped: ${gzipped.length} bytes stored as ${stat2.size} bytes of ${stat2.contentEncoding}`);
console.log(`pre-gzipped: raw read matches the gzip bytes: ${raw.equals(gzipped)}`);
console.log(`pre-gzipped: raw read piped through gunzip matches the original: ${back2.equals(original)}`);

const ok = back1.equals(original) && raw.equals(gzipped) && back2.equals(original);
console.log(ok ? 'ok' : 'MISMATCH');
process.exitCode = ok ? 0 : 1;
await redis.quit();
