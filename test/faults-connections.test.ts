/**
 * Dropped connections cost nothing: writers and readers reconnect and carry on, and what comes out
 * is byte for byte what went in. Faults are real: CLIENT KILL on a private server, and a TCP proxy
 * that cuts connections.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connect,
  connectSubject,
  disconnectSubject,
  subject,
  subjectReady,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf, pieceFields } from './helpers/keys.js';
import { startProxy, type Proxy as TcpProxy } from './helpers/proxy.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

let server: RedisServer;
let admin: Redis;
let proxy: TcpProxy;

beforeAll(async () => {
  server = await startRedis();
  admin = connect(server.url);
  proxy = await startProxy(server.port);
});

afterAll(async () => {
  await closeAll();
  await proxy?.close();
  await server?.stop();
});

/** Kill every connection whose client name starts with `name`. Returns how many. */
async function kill(name: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  let killed = 0;
  for (const line of list.split('\n')) {
    const id = /\bid=(\d+)/.exec(line)?.[1];
    const client = /\bname=(\S*)/.exec(line)?.[1] ?? '';
    if (id && client.startsWith(name)) {
      killed += Number(await admin.client('KILL', 'ID', id).catch(() => 0));
    }
  }
  return killed;
}

/**
 * A source that emits `data` in pieces of `piece` bytes, pausing `pause` ms between them: the
 * transfers below last long enough for faults to land in the middle of them.
 */
function pacedSource(data: Buffer, piece: number, pause: number): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += piece) {
        yield data.subarray(offset, offset + piece);
        if (pause > 0) await sleep(pause);
      }
    })(),
  );
}

async function chunkCount(key: string): Promise<number> {
  return admin.xlen(await chunkStreamOf(admin, key));
}

describe('dropped connections', () => {
  it('a writer whose connection is killed mid-file reconnects; nothing is lost or stored twice', async () => {
    const writerClient = connectSubject(server.url, { connectionName: 'w1' });
    const data = bytes(8 * 1024 * 1024, 21);
    const chunkSize = 64 * 1024;
    let done = false;
    let kills = 0;
    const writing = pipeline(
      pacedSource(data, 256 * 1024, 2),
      createRedisWriteStream(writerClient, 'w1', { chunkSize }),
    ).finally(() => (done = true));
    // The fault schedule: a kill every 15 ms until the upload is done (time is the subject).
    while (!done) {
      await sleep(15);
      if (!done) kills += await kill('w1');
    }
    await writing;
    expect(kills).toBeGreaterThanOrEqual(3);
    const got = await collect(createRedisReadStream(subject(admin), 'w1'));
    expect(sha256(got)).toBe(sha256(data));
    // The header, one entry per chunk, the end record: no chunk stored twice.
    expect(await chunkCount('w1')).toBe(data.length / chunkSize + 2);
  });

  it('a reader whose connections are killed, also while blocked waiting, resumes where it was', async () => {
    const writerClient = connectSubject(server.url);
    const readerClient = connectSubject(server.url, { connectionName: 'r1' });
    const data = bytes(2 * 1024 * 1024, 22);
    const reading = collect(createRedisReadStream(readerClient, 'r1', { waitForCreate: 10_000 }));
    let done = false;
    const writing = pipeline(
      pacedSource(data, 64 * 1024, 10),
      createRedisWriteStream(writerClient, 'r1', { chunkSize: 16 * 1024 }),
    );
    let kills = 0;
    const result = reading.finally(() => (done = true));
    // The fault schedule: a kill every 25 ms until the read is done (time is the subject).
    while (!done) {
      await sleep(25);
      if (!done) kills += await kill('r1');
    }
    await writing;
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(sha256(await result)).toBe(sha256(data));
  });

  it('survives 20+ kills and cuts during a 64 MiB transfer with several followers', async () => {
    const size = 64 * 1024 * 1024;
    const data = bytes(size, 23);
    const expected = sha256(data);
    // Half of the clients talk through the proxy, whose cuts drop every connection through it.
    const writerClient = connectSubject(proxy.url, { connectionName: 'big-w' });
    const readers = [0, 1, 2].map((i) =>
      connectSubject(i % 2 === 0 ? server.url : proxy.url, { connectionName: `big-r${i}` }),
    );
    const results = readers.map((client) => collect(createRedisReadStream(client, 'big', { waitForCreate: 30_000 })));
    let finished = 0;
    const all = Promise.all(results.map((r) => r.finally(() => finished++)));
    // Awaited below, after the writer: a reader that fails first is reported there, not as unhandled.
    all.catch(() => {});
    const writing = pipeline(pacedSource(data, 512 * 1024, 8), createRedisWriteStream(writerClient, 'big'));
    let kills = 0;
    let cuts = 0;
    // A fixed seed: the fault schedule is random but reproducible.
    const schedule = fc.sample(fc.tuple(fc.integer({ min: 10, max: 60 }), fc.integer({ min: 0, max: 4 })), {
      numRuns: 10_000,
      seed: 7,
    });
    for (let i = 0; finished < readers.length; i++) {
      const [pause, target] = schedule[i % schedule.length]!;
      await sleep(pause);
      if (finished === readers.length) break;
      if (target === 4) cuts += proxy.cut() > 0 ? 1 : 0;
      else kills += (await kill(target === 3 ? 'big-w' : `big-r${target}`)) > 0 ? 1 : 0;
    }
    await writing;
    const outputs = await all;
    const mismatches = outputs.filter((o) => sha256(o) !== expected).length;
    console.log(
      `faults: ${size / 1048576} MiB, ${readers.length} followers, ${kills} kills + ${cuts} proxy cuts, ${mismatches} mismatches`,
    );
    expect(kills + cuts).toBeGreaterThanOrEqual(20);
    expect(mismatches).toBe(0);
  }, 120_000);

  it('a connection stalled in both directions delays but does not corrupt', async () => {
    const writerClient = connectSubject(proxy.url);
    const data = bytes(1024 * 1024, 24);
    const writer = createRedisWriteStream(writerClient, 'stall', { chunkSize: 32 * 1024 });
    const writing = pipeline(pacedSource(data, 64 * 1024, 1), writer);
    await eventually(() => writer.committedBytes > 0, 'the upload to be under way');
    proxy.stall();
    // How long the connection stalls: time is the subject.
    await sleep(200);
    proxy.resume();
    await writing;
    expect(sha256(await collect(createRedisReadStream(subject(admin), 'stall')))).toBe(sha256(data));
  });

  it('a follower whose connection stops answering fails with ERR_REDIS_FILE_TIMEOUT, Redis still silent', async () => {
    const key = `quiet-${Date.now()}`;
    // A writer that is alive and quiet: one write, then nothing; its heartbeat far apart.
    const writer = createRedisWriteStream(subject(admin), key, { heartbeatInterval: 60_000 });
    writer.on('error', () => {});
    writer.write('first');
    writer.flush();
    const reader = createRedisReadStream(connectSubject(proxy.url), key, { idleTimeout: 2000, waitForCreate: 10_000 });
    const got: Buffer[] = [];
    reader.on('data', (chunk: Buffer) => got.push(chunk));
    const failed = new Promise((resolve) => reader.on('error', resolve));
    await eventually(() => Buffer.concat(got).toString() === 'first', 'the follower to have the first write');
    proxy.stall();
    try {
      expect(await failed).toMatchObject({ code: 'ERR_REDIS_FILE_TIMEOUT' });
    } finally {
      proxy.resume();
      writer.destroy();
    }
  });

  for (const when of ['before its first look', 'while it waits'] as const) {
    it(`a reader waiting for a file to be created whose connection stops answering (${when}) fails with ERR_REDIS_FILE_TIMEOUT, Redis still silent`, async () => {
      const name = `wfc-${when === 'while it waits' ? 'waiting' : 'first'}-${Date.now()}`;
      const client = connectSubject(proxy.url, { connectionName: name });
      await subjectReady(client);
      const reader = createRedisReadStream(client, `never-${name}`, { waitForCreate: 1500, idleTimeout: 1000 });
      const failed = new Promise((resolve) => reader.on('error', resolve));
      reader.resume();
      if (when === 'while it waits') {
        await eventually(async () => (await blockedIn(admin, name)) === 1, 'the reader to wait for the file');
      }
      proxy.stall();
      try {
        expect(await failed).toMatchObject({ code: 'ERR_REDIS_FILE_TIMEOUT', message: /within waitForCreate/ });
      } finally {
        proxy.resume();
        disconnectSubject(client);
      }
    });
  }

  // The claim goes out before the first write when the client's link is not known yet (a fresh
  // client), and beside the first writes once it is (a warm one).
  for (const warm of [false, true]) {
    it(`a writer aborted while its claim gets no answer closes with AbortError, Redis still silent (${warm ? 'warm' : 'fresh'} client)`, async () => {
      const client = connectSubject(proxy.url);
      await subjectReady(client);
      if (warm)
        await pipeline(Readable.from([Buffer.from('warm')]), createRedisWriteStream(client, `warm-${Date.now()}`));
      proxy.stall();
      try {
        const ac = new AbortController();
        const writer = createRedisWriteStream(client, `silent-${warm}`, { signal: ac.signal });
        const failed = new Promise((resolve) => writer.on('error', resolve));
        const closed = new Promise((resolve) => writer.on('close', resolve));
        writer.write('a line\n');
        await new Promise((resolve) => setImmediate(resolve)); // the claim is on its way
        ac.abort();
        await closed;
        expect(await failed).toMatchObject({ name: 'AbortError' });
      } finally {
        proxy.resume();
      }
    });
  }

  it('property: any input, any chunk size, under a random schedule of connection kills', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        // Up to 400,000 bytes in at most 8,000 chunks: the kills (at most 240 ms in all) land
        // within the transfer, and a 1-byte chunk size does not make a run of 400,000 entries.
        fc
          .integer({ min: 1, max: 64 * 1024 })
          .chain((chunkSize) =>
            fc.tuple(fc.integer({ min: 0, max: Math.min(400_000, chunkSize * 8000) }), fc.constant(chunkSize)),
          ),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 8 }),
        async ([size, chunkSize], killAfter) => {
          const key = `prop-${run++}`;
          const data = bytes(size, run);
          const w = connectSubject(server.url, { connectionName: `${key}-w` });
          const r = connectSubject(server.url, { connectionName: `${key}-r` });
          const reading = collect(createRedisReadStream(r, key, { waitForCreate: 10_000 }));
          reading.catch(() => {}); // awaited below, after the writer
          const writing = pipeline(pacedSource(data, 16 * 1024, 1), createRedisWriteStream(w, key, { chunkSize }));
          // The fault schedule drawn by fast-check (time is the subject).
          for (const ms of killAfter) {
            await sleep(ms);
            await kill(key);
          }
          await writing;
          const got = await reading;
          disconnectSubject(w);
          disconnectSubject(r);
          return got.equals(data);
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);
});

describe('writer heartbeat across a dropped connection', () => {
  it('a follower does not time out while the writer reconnects', async () => {
    const writerClient = connectSubject(server.url, { connectionName: 'hb-w' });
    const data = bytes(64 * 1024, 25);
    const writer = createRedisWriteStream(writerClient, 'hb', { chunkSize: 1024, heartbeatInterval: 50 });
    writer.write(data.subarray(0, 1024));
    const reading = collect(createRedisReadStream(subject(admin), 'hb', { idleTimeout: 500, waitForCreate: 5000 }));
    // Five kills 150 ms apart, three idle timeouts in all: time is the subject.
    for (let i = 0; i < 5; i++) {
      await sleep(150);
      await kill('hb-w');
    }
    writer.end(data.subarray(1024));
    await once(writer, 'finish');
    expect((await reading).equals(data)).toBe(true);
  });
});

describe('a gap that the writer repairs while its follower is late', () => {
  // The follower's entries show a gap (a piece lost with a dropped connection, the next one
  // stored); before it looks at the file's hash, the writer has repaired its stream and completed
  // the file. The look is held back by a proxy until then, as a busy process would be late.
  it('is read again, and the follower reads on to the end, not CORRUPT', async () => {
    const late = await startProxy(server.port, '127.0.0.1', { holding: true });
    try {
      const key = `gap-repaired-${Date.now()}`;
      const writer = createRedisWriteStream(subject(admin), key, { chunkSize: 8, flushInterval: 0 });
      writer.write('abcdefgh');
      await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
      const client = connectSubject(late.url, { connectionName: 'gap-late' });
      const reader = createRedisReadStream(client, key, { idleTimeout: 60_000 });
      const parts: Buffer[] = [];
      reader.on('data', (d: Buffer) => parts.push(d));
      const outcome = new Promise((resolve) => {
        reader.on('error', resolve);
        reader.on('end', () => resolve('end'));
      });
      await eventually(() => Buffer.concat(parts).toString() === 'abcdefgh', 'the follower to catch up');
      await eventually(async () => (await blockedIn(admin, 'gap-late')) === 1, 'the follower to wait');
      // Chunk 2 stored with chunk 1 missing: the follower's look at the hash is held back.
      const stream = await chunkStreamOf(admin, key);
      const looking = late.holdRequest(/HMGET/i);
      await admin.xadd(stream, '2-2', ...pieceFields(Buffer.from('qrstuvwx')));
      await looking;
      // The repair: what lies past the acknowledged prefix goes, and the writer writes on from there.
      await admin.xdel(stream, '2-2');
      await admin.xsetid(stream, '0-2');
      writer.end('ijklmnopqrstuvwx');
      await new Promise((resolve) => writer.once('finish', resolve));
      late.release();
      expect(await outcome).toBe('end');
      expect(Buffer.concat(parts).toString()).toBe('abcdefghijklmnopqrstuvwx');
      disconnectSubject(client);
    } finally {
      await late.close();
    }
  });
});
