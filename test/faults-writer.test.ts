/**
 * The writer's process dies: followers time out once the heartbeat stops (never while a live
 * writer merely waits), stat shows the file incomplete, and `resume` finishes it byte for byte.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, stat } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf, fileKeysOf } from './helpers/keys.js';
import { bytes, collect, follower, sha256 } from './helpers/streams.js';

let redis: Redis;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(() => {
  redis = connect();
  dir = mkdtempSync(join(tmpdir(), 'rfs-crash-'));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

function settle(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (err: unknown) => err,
  );
}

/** Start a writer process that stores the first `stallAt` bytes of `data` and then waits. */
async function stallingWriter(
  key: string,
  data: Buffer,
  stallAt: number,
  chunkSize: number,
  heartbeatInterval = 50,
): Promise<ChildProcess> {
  const path = join(dir, `${key.replace(/[^a-z0-9]/gi, '_')}.bin`);
  writeFileSync(path, data);
  const child = spawn(
    process.execPath,
    [
      'test/fixtures/stalling-writer.mjs',
      sharedRedisUrl(),
      key,
      path,
      String(stallAt),
      String(chunkSize),
      String(heartbeatInterval),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('stalled')) done();
    };
    const onExit = (code: number | null): void =>
      done(new Error(`writer process exited with ${code} before it stalled`));
    const done = (err?: Error): void => {
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
  return child;
}

/**
 * A writer process that stores the first `stallAt` bytes of `data`, with heartbeats every 300 ms
 * (the lease lapses 900 ms after the last one), killed once a heartbeat has recorded the committed
 * size of its whole chunks (and `before` has resolved), and the writer that resumes the file,
 * ready. Restarted at once, as a supervisor restarts a crashed process: the dead writer's lease has
 * not lapsed yet, so the new writer waits it out, then takes over.
 */
async function crashedAndResumed(
  key: string,
  data: Buffer,
  stallAt: number,
  chunkSize: number,
  before: () => Promise<unknown> = async () => {},
): Promise<ReturnType<typeof createRedisWriteStream>> {
  const child = await stallingWriter(key, data, stallAt, chunkSize, 300);
  await before();
  await eventually(
    async () => Number(await redis.hget(fileKeysOf(key).meta, 'size')) > 0,
    'a heartbeat with the committed size',
  );
  child.kill('SIGKILL');
  await once(child, 'exit');
  const writer = createRedisWriteStream(subject(redis), key, { resume: true });
  await once(writer, 'ready');
  return writer;
}

describe('a writer process killed mid-file', () => {
  it('followers time out with ERR_REDIS_FILE_TIMEOUT once the heartbeat stops, not before', async () => {
    const key = uniqueKey('sigkill');
    const data = bytes(100_000, 41);
    const child = await stallingWriter(key, data, 40_000, 1000);
    let failedAt = 0;
    const reading = settle(
      collect(createRedisReadStream(subject(redis), key, { idleTimeout: 400 })).finally(() => (failedAt = Date.now())),
    );
    // The live writer waits on its source for many idle timeouts: its heartbeat keeps readers on.
    // Time is the subject.
    await sleep(1200);
    expect(failedAt).toBe(0);
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await reading).toMatchObject({ code: 'ERR_REDIS_FILE_TIMEOUT' });
    expect(failedAt).toBeGreaterThanOrEqual(killedAt);
    const s = await stat(subject(redis), key);
    expect(s.state).toBe('writing');
    expect(s.size).toBeLessThanOrEqual(40_000);
  });

  it('resume continues from the committed size stat reports; the file is byte-identical', async () => {
    const key = uniqueKey('resume');
    const data = bytes(300_000, 42);
    const chunkSize = 4096;
    // A follower that outlives the crash and the resume.
    const following = collect(
      createRedisReadStream(subject(redis), key, { waitForCreate: 10_000, idleTimeout: 20_000 }),
    );
    const writer = await crashedAndResumed(key, data, 170_000, chunkSize);
    const size = writer.committedBytes;
    expect(size % chunkSize).toBe(0);
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(170_000);
    const path = join(dir, `${key.replace(/[^a-z0-9]/gi, '_')}.bin`);
    await pipeline(createReadStream(path, { start: size }), writer);
    expect(writer.committedBytes).toBe(data.length);
    const got = await collect(createRedisReadStream(subject(redis), key));
    expect(sha256(got)).toBe(sha256(data));
    expect(sha256(await following)).toBe(sha256(data));
    // The header, one piece per chunk (the dead writer's flushed partial chunk was cut), the end record.
    expect(await redis.xlen(await chunkStreamOf(redis, key))).toBe(Math.ceil(data.length / chunkSize) + 2);
  });
  it('a follower that had read past the cut fails with ERR_REDIS_FILE_CORRUPT when the resumed file ends before what it delivered', async () => {
    const key = uniqueKey('resume-short');
    const data = bytes(100_000, 43);
    const chunkSize = 4096;
    const reader = follower(subject(redis), key, { waitForCreate: 10_000, idleTimeout: 20_000 });
    // 70,000 bytes stored (a partly filled chunk at the end), of which the heartbeats commit whole chunks.
    const writer = await crashedAndResumed(key, data, 70_000, chunkSize, () =>
      eventually(() => reader.received().length === 70_000, 'the follower to have every byte stored'),
    );
    expect(writer.committedBytes).toBeLessThan(70_000);
    // The new writer ends the file where it took over: shorter than what the follower delivered.
    writer.end();
    await once(writer, 'finish');
    await expect(reader.done).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_CORRUPT',
      message: expect.stringContaining(
        `ended the file at byte ${writer.committedBytes}, but this reader had delivered its bytes up to 70000`,
      ),
    });
  });
});

describe('resume', () => {
  it('overwrite of a file whose writer was SIGKILLed a moment ago waits out its lease and replaces it', async () => {
    const key = uniqueKey('overwrite-dead');
    const child = await stallingWriter(key, bytes(20_000, 44), 10_000, 1000, 200);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const before = await stat(subject(redis), key);
    expect(before).toMatchObject({ state: 'writing' });
    // At once, as a supervisor restarts: the lease (3 x 200 ms) has not lapsed yet.
    await pipeline(
      Readable.from([Buffer.from('new content')]),
      createRedisWriteStream(subject(redis), key, { overwrite: true }),
    );
    expect((await collect(createRedisReadStream(subject(redis), key))).toString()).toBe('new content');
  });

  it('stat tells a dead writer from a live one', async () => {
    const key = uniqueKey('alive');
    const child = await stallingWriter(key, bytes(20_000, 45), 10_500, 1000, 50);
    // Every byte stored so far, the flushed part of chunk 10 included (a heartbeat records only
    // the whole chunks).
    await eventually(async () => (await stat(subject(redis), key)).size === 10_500, 'the flushed part of chunk 10');
    expect(await stat(subject(redis), key)).toMatchObject({ state: 'writing', writerAlive: true, chunks: 11 });
    expect(await redis.hget(fileKeysOf(key).meta, 'size')).toBe('10000');
    child.kill('SIGKILL');
    await once(child, 'exit');
    await eventually(async () => !(await stat(subject(redis), key)).writerAlive, "the dead writer's lease to lapse");
    expect(await stat(subject(redis), key)).toMatchObject({ state: 'writing', writerAlive: false, size: 10_500 });
  });

  it('continues an aborted upload', async () => {
    const key = uniqueKey('resume-aborted');
    const data = bytes(50_000, 43);
    const first = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, heartbeatInterval: 20 });
    first.write(data.subarray(0, 20_500));
    await eventually(() => first.committedBytes >= 20_000, 'twenty chunks stored');
    first.destroy();
    await once(first, 'close');
    const { state, size } = await stat(subject(redis), key);
    expect(state).toBe('aborted');
    await pipeline(
      (async function* () {
        yield data.subarray(size);
      })(),
      createRedisWriteStream(subject(redis), key, { resume: true }),
    );
    expect((await collect(createRedisReadStream(subject(redis), key))).equals(data)).toBe(true);
  });

  it('creates the file when there is none', async () => {
    const key = uniqueKey('resume-new');
    await pipeline(
      (async function* () {
        yield Buffer.from('fresh');
      })(),
      createRedisWriteStream(subject(redis), key, { resume: true }),
    );
    expect((await collect(createRedisReadStream(subject(redis), key))).toString()).toBe('fresh');
  });

  it('refuses a complete file and a file a live writer holds', async () => {
    const key = uniqueKey('resume-refused');
    // A short lease: a resume waits it out once, finds the heartbeat still going, and gives up.
    const live = createRedisWriteStream(subject(redis), key, { heartbeatInterval: 50 });
    await once(live, 'ready');
    live.write(Buffer.from('abc'));
    const write = (): Promise<void> =>
      pipeline(
        (async function* () {
          yield Buffer.from('x');
        })(),
        createRedisWriteStream(subject(redis), key, { resume: true }),
      );
    expect(await settle(write())).toMatchObject({ code: 'ERR_REDIS_FILE_EXISTS' });
    live.end();
    await once(live, 'finish');
    expect(await settle(write())).toMatchObject({ code: 'ERR_REDIS_FILE_EXISTS' });
  });
});
