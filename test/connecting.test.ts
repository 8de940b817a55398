/**
 * A cluster client handed to the package while it is still connecting: ioredis and iovalkey queue
 * the commands until they are connected, a node-redis cluster refuses them ("The client is
 * offline") and the package's adapter sends them again until it is ready (docs/clients.md).
 */
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, list, stat } from '../src/index.js';
import { closeAll, clusterSeeds, subject, subjectClientName, uniqueKey } from './helpers/clients.js';
import { bytes, collect, put } from './helpers/streams.js';

afterAll(closeAll);

describe('a cluster client that is still connecting', () => {
  it('stores a file and reads it back', async () => {
    const seeds = clusterSeeds();
    if (!seeds) throw new Error('this file runs in the cluster projects');
    // Made inside the test, so that nothing waits for its connection first.
    const client = subject(new Cluster(seeds, { lazyConnect: true }));
    if (subjectClientName() === 'node-redis') expect((client as unknown as { isReady: boolean }).isReady).toBe(false);
    const key = uniqueKey('connecting');
    const data = bytes(300_000, 7);
    await put(client, key, data, { chunkSize: 64 * 1024 });
    expect((await collect(createRedisReadStream(client, key))).equals(data)).toBe(true);
    expect(await stat(client, key)).toMatchObject({ state: 'complete', size: data.length });
  });

  it('lists the files of every primary when list() is its first command', async () => {
    const seeds = clusterSeeds();
    if (!seeds) throw new Error('this file runs in the cluster projects');
    const dir = uniqueKey('connecting-list');
    const keys = Array.from({ length: 12 }, (_, i) => `${dir}/${i}`).sort();
    const writer = subject(new Cluster(seeds));
    for (const key of keys) await put(writer, key, Buffer.from(key));
    const client = subject(new Cluster(seeds, { lazyConnect: true }));
    const found: string[] = [];
    for await (const f of list(client, { match: `${dir}/*` })) found.push(f.key);
    expect(found.sort()).toEqual(keys);
  });
});
