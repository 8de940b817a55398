/**
 * `redis-file stat` and `ls` show a file whose writer died as such, not as one being written.
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream, stat } from '../src/index.js';
import { run } from './helpers/cli.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';

const redis = connect();
afterAll(closeAll);

describe('a file whose writer died', () => {
  it('stat says its writer is dead, ls shows it as dead, and the JSON has writerAlive', async () => {
    const key = uniqueKey('dead-writer');
    const live = uniqueKey('live-writer');
    const writer = createRedisWriteStream(redis, key);
    writer.on('error', () => {});
    await once(writer, 'ready');
    // Its lease taken from it with a heartbeat long past, as a writer whose process died leaves it.
    await redis.hset(fileKeysOf(key).meta, 'writer', '0000000000000000', 'hb', '1');
    writer.destroy();
    await once(writer, 'close');
    const other = createRedisWriteStream(redis, live);
    await once(other, 'ready');
    await eventually(async () => !(await stat(redis, key)).writerAlive, 'the lease to have lapsed');

    const s = await run(['stat', key]);
    expect(s.code).toBe(0);
    expect(s.stdout.toString()).toMatch(/^state: +writing, but its writer is dead/m);
    const json = await run(['stat', key, '--json']);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ state: 'writing', writerAlive: false });

    const ls = (await run(['ls', `${key.split(':').slice(0, 3).join(':')}:*`])).stdout.toString();
    expect(ls.split('\n').find((line) => line.endsWith(key))).toMatch(/^dead /);
    expect(ls.split('\n').find((line) => line.endsWith(live))).toMatch(/^writing /);
    other.destroy();
  });
});
