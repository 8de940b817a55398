/**
 * With an ioredis or iovalkey client of a single server, a whole chunk's XADD is encoded in the
 * room around the chunk's bytes and handed to the client as it is: those clients copy every
 * command with a Buffer argument into a new buffer otherwise. The bytes on the wire are the
 * client's own encoding, every whole chunk goes out that way, a re-sent chunk is stored intact, a
 * command the client writes again after its buffer was released is encoded from its arguments,
 * and a client whose commands cannot be handed over encoded (a cluster, a key prefix,
 * auto-pipelining) sends them as usual.
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command as IoredisCommand, Redis } from 'ioredis';
import { Command as IovalkeyCommand } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream, type RedisClient } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import { encodeAround } from '../src/redis/resp.js';
import {
  closeAll,
  clusterSeeds,
  connect,
  connectAnySubject,
  subjectClientName,
  subjectReady,
  uniqueKey,
} from './helpers/clients.js';
import { chunkStreamOf } from './helpers/keys.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, get } from './helpers/streams.js';

// A server of this file's own, beside the run's (a cluster in the cluster projects): standalone
// clients with options of their own, and a writer whose connections are killed.
let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await closeAll();
  await server?.stop();
});

/** What a client's own encoding of `args` is (Command#toWritable), as bytes. */
function clientEncoding(Command: typeof IoredisCommand, args: (string | Buffer)[]): Buffer {
  const [name, ...rest] = args;
  const wire = new Command(String(name), rest).toWritable(undefined as never);
  return Buffer.isBuffer(wire) ? wire : Buffer.from(wire);
}

describe('the encoding around a chunk', () => {
  const cases = [
    { key: 'rfs:{a}:chunks:0123456789abcdef', id: '0-2', size: 1 },
    { key: 'rfs:{logs/build.log}:chunks:fedcba9876543210', id: '123456-2', size: 300 },
    { key: 'rfs:{файл/ü€😀}:chunks:0000000000000000', id: '7-3', size: 4096 },
  ];
  for (const { key, id, size } of cases) {
    it(`is byte for byte what ioredis and iovalkey send (${JSON.stringify(key)}, ${size} bytes)`, () => {
      const data = bytes(size, size);
      const at = 200;
      const buffer = Buffer.alloc(at + size + 64, 0xaa);
      data.copy(buffer, at);
      const before = ['XADD', key, 'NOMKSTREAM', id, 'd'];
      const after = ['c', '0badf00d'];
      const wire = encodeAround(buffer, at, size, before, after);
      expect(wire).toBeDefined();
      for (const Command of [IoredisCommand, IovalkeyCommand as unknown as typeof IoredisCommand]) {
        expect(wire!.equals(clientEncoding(Command, [...before, data, ...after]))).toBe(true);
      }
      // Nothing outside the command was written, and the chunk's bytes stayed where they were.
      const start = wire!.byteOffset - buffer.byteOffset;
      expect(buffer.subarray(0, start).every((b) => b === 0xaa)).toBe(true);
      expect(buffer.subarray(start + wire!.length).every((b) => b === 0xaa)).toBe(true);
      expect(buffer.subarray(at, at + size).equals(data)).toBe(true);
    });
  }

  it('is not written when the room before or after the bytes is too small', () => {
    const buffer = Buffer.alloc(100, 0xaa);
    expect(encodeAround(buffer, 10, 50, ['XADD', 'k', 'NOMKSTREAM', '0-2', 'd'], ['c', '0badf00d'])).toBeUndefined();
    expect(encodeAround(buffer, 60, 35, ['XADD', 'k', 'NOMKSTREAM', '0-2', 'd'], ['c', '0badf00d'])).toBeUndefined();
    expect(buffer.every((b) => b === 0xaa)).toBe(true);
  });
});

describe('chunks sent as encoded', () => {
  let client: RedisClient;
  let encoded = 0;
  let xadds = 0;
  beforeAll(async () => {
    client = connectAnySubject();
    await subjectReady(client);
    // Count the XADDs the package hands to the client, and which of them come encoded.
    const io = client as unknown as { sendCommand?: (command: { name: string }) => Promise<unknown> };
    const sendCommand = io.sendCommand;
    if (subjectClientName() !== 'node-redis' && sendCommand) {
      io.sendCommand = function (this: unknown, command: { name: string }) {
        if (command.name === 'xadd') {
          xadds++;
          if (Object.hasOwn(command, 'toWritable')) encoded++;
        }
        return sendCommand.call(this, command);
      };
    }
  });

  it('every whole chunk goes out encoded with ioredis and iovalkey on a single server, as usual on a cluster and with node-redis', async () => {
    const port = portOf(client);
    const chunkSize = 16 * 1024;
    const data = bytes(10 * chunkSize + 1000, 7);
    const key = uniqueKey('encoded');
    const encodes = subjectClientName() !== 'node-redis' && !clusterSeeds();
    if (subjectClientName() === 'node-redis') {
      // node-redis writes a Buffer argument to its socket without copying it: nothing to encode.
      expect(port.sendEncoded).toBeUndefined();
    } else {
      expect(await port.encodes).toBe(encodes);
    }
    encoded = xadds = 0;
    await pipeline(Readable.from([data]), createRedisWriteStream(client, key, { chunkSize }));
    expect((await get(client, key)).equals(data)).toBe(true);
    if (subjectClientName() !== 'node-redis') {
      // The ten whole chunks encoded; the last piece, shorter than a chunk, sent as usual.
      expect(encoded).toBe(encodes ? 10 : 0);
      expect(xadds).toBe(11);
    }
  });
});

describe('clients whose commands are sent as usual', () => {
  it('a key prefix or auto-pipelining: commands go out as the client builds them, and the file is stored', async () => {
    const prefixed = new Redis({ lazyConnect: true, keyPrefix: 'app:' });
    expect(await portOf(prefixed as unknown as RedisClient).encodes).toBe(false);
    prefixed.disconnect();

    const piped = connect(server.url, { enableAutoPipelining: true });
    const port = portOf(piped as unknown as RedisClient);
    expect(await port.encodes).toBe(false);
    const data = bytes(5 * 16 * 1024, 9);
    const key = uniqueKey('autopipelined');
    await pipeline(
      Readable.from([data]),
      createRedisWriteStream(piped as unknown as RedisClient, key, { chunkSize: 16 * 1024 }),
    );
    expect((await get(piped, key)).equals(data)).toBe(true);
  });
});

describe('a chunk sent again', () => {
  it('by the client once its buffer was released is encoded from its arguments', async () => {
    const redis = connect(server.url);
    const port = portOf(redis as unknown as RedisClient);
    expect(await port.encodes).toBe(true);
    const key = uniqueKey('stale');
    const args = ['SET', key, 'from the arguments'];
    const wire = Buffer.from(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$8\r\nfrom the\r\n`);
    // Still current: the encoding goes out as it is (it says "from the").
    await port.sendEncoded!(key, args, wire, () => true);
    expect(await redis.get(key)).toBe('from the');
    // Released since: the client encodes the arguments.
    await port.sendEncoded!(key, args, wire, () => false);
    expect(await redis.get(key)).toBe('from the arguments');
  });

  it('after its connection was killed is stored intact, once', async () => {
    const admin = connect(server.url);
    const writer = connect(server.url, { connectionName: 'encoded-writer' }) as unknown as RedisClient;
    await subjectReady(writer);
    expect(await portOf(writer).encodes).toBe(true);
    const chunkSize = 64 * 1024;
    const data = bytes(4 * 1024 * 1024, 11);
    const key = uniqueKey('killed');
    let done = false;
    let kills = 0;
    const writing = pipeline(
      Readable.from(
        (async function* () {
          for (let offset = 0; offset < data.length; offset += 128 * 1024) {
            yield data.subarray(offset, offset + 128 * 1024);
            await sleep(2);
          }
        })(),
      ),
      createRedisWriteStream(writer, key, { chunkSize }),
    ).finally(() => (done = true));
    // The fault schedule: the writer's connection killed every 15 ms until the file is stored.
    while (!done) {
      await sleep(15);
      if (!done) kills += Number(await admin.call('CLIENT', 'KILL', 'USER', 'default', 'SKIPME', 'yes'));
    }
    await writing;
    expect(kills).toBeGreaterThanOrEqual(2);
    expect((await get(admin, key)).equals(data)).toBe(true);
    // The header, one entry per chunk, the end record: no chunk stored twice.
    expect(await admin.xlen(await chunkStreamOf(admin, key))).toBe(data.length / chunkSize + 2);
  });
});
