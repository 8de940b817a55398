/**
 * Small stream utilities shared by the tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Cluster, Redis } from 'ioredis';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type ReadStreamOptions,
  type RedisClient,
  type RedisReadStream,
  type WriteStreamOptions,
} from '../../src/index.js';
import { subject } from './clients.js';

/** Deterministic pseudo-random bytes (xorshift), so that failures reproduce. */
export function bytes(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export { randomBytes };

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A Readable that emits `data` cut at the given sizes (cycled). */
export function splitSource(data: Buffer, sizes: number[] = [data.length || 1]): Readable {
  const parts: Buffer[] = [];
  let offset = 0;
  let i = 0;
  while (offset < data.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    parts.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return Readable.from(parts, { objectMode: false });
}

/** Collect a readable into one Buffer. */
export async function collect(readable: NodeJS.ReadableStream | Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of readable as AsyncIterable<Buffer>) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

/** A Writable sink that keeps what it gets. */
export function sink(): Writable & { data(): Buffer } {
  const parts: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  }) as Writable & { data(): Buffer };
  w.data = () => Buffer.concat(parts);
  return w;
}

/** Store `data` at `key`, written in parts of the given sizes, through the client under test (subject()). */
export async function put(
  redis: Redis | Cluster | RedisClient,
  key: string,
  data: Buffer,
  options?: WriteStreamOptions,
  sizes?: number[],
): Promise<void> {
  await pipeline(splitSource(data, sizes), createRedisWriteStream(subject(redis), key, options));
}

/** Read the whole file at `key`, through the client under test (subject()). */
export async function get(
  redis: Redis | Cluster | RedisClient,
  key: string,
  options?: ReadStreamOptions,
): Promise<Buffer> {
  return collect(createRedisReadStream(subject(redis), key, options));
}

/**
 * A follower of `key` (waiting up to 20 s for it to be created) that keeps what it delivers:
 * `received()` so far, and `done`, which settles with all of it at the end (or with its error).
 */
export function follower(
  client: RedisClient,
  key: string,
  options: ReadStreamOptions = {},
): { reader: RedisReadStream; done: Promise<Buffer>; received(): Buffer } {
  const reader = createRedisReadStream(client, key, { waitForCreate: 20_000, ...options });
  const parts: Buffer[] = [];
  reader.on('data', (d: Buffer) => parts.push(d));
  const done = once(reader, 'end').then(() => Buffer.concat(parts));
  done.catch(() => {});
  return { reader, done, received: () => Buffer.concat(parts) };
}
