// The glob of `list` (src/format/glob.ts): Redis's own pattern syntax, checked against Redis's own
// matching (KEYS on a database of the shared server that only this file uses), and matched against
// a file's key by characters, where Redis matches bytes.

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { globMatcher } from '../src/format.js';
import { createRedisWriteStream, list, remove } from '../src/index.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';

afterAll(closeAll);

/** A database of its own: KEYS there sees only this file's keys. */
const DB = 11;

describe('the glob of list', () => {
  it("decides as Redis's KEYS does, for any ASCII pattern and key (property)", async () => {
    const redis = connect(undefined, { db: DB });
    await redis.flushdb();
    // Few characters, most of them special, so that classes, ranges, escapes and stars mix.
    const alphabet = ['a', 'b', 'c', '-', '^', ']', '[', '\\', '*', '?'];
    const keys = fc.sample(fc.string({ unit: fc.constantFrom(...alphabet.slice(0, 7)), minLength: 1, maxLength: 5 }), {
      numRuns: 300,
      seed: 11,
    });
    const distinct = [...new Set(keys)];
    await redis.mset(...distinct.flatMap((k) => [k, '1']));
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 7 }), async (pattern) => {
        const byRedis = (await redis.keys(pattern)).sort();
        const matches = globMatcher(pattern);
        expect(distinct.filter(matches).sort(), pattern).toEqual(byRedis);
      }),
      { numRuns: 400, seed: 7 },
    );
    await redis.flushdb();
  });

  it('takes a reversed range as Redis does, and a long literal pattern', () => {
    expect(globMatcher('[z-a]')('m')).toBe(true);
    expect(globMatcher('[z-a]')('A')).toBe(false);
    const long = `logs/${'x'.repeat(100_000)}`;
    expect(globMatcher(long)(long)).toBe(true);
    expect(globMatcher(`${long}*`)(`${long}.gz`)).toBe(true);
    expect(globMatcher(`*${'a*'.repeat(5_000)}b`)('a'.repeat(20_000))).toBe(false);
  });

  it('lists the files whose keys match, `?` standing for one character however it is stored', async () => {
    const redis = connect();
    const base = uniqueKey('glob');
    const names = ['a{b', 'aéb', 'a%b', 'a}b', 'axb', 'ab', 'a😀b', 'a]b'];
    for (const name of names) {
      const writer = createRedisWriteStream(subject(redis), `${base}/${name}`);
      await new Promise((resolve, reject) => writer.on('finish', resolve).on('error', reject).end('x'));
    }
    const listed = async (match: string): Promise<string[]> => {
      const out: string[] = [];
      for await (const file of list(subject(redis), { match: `${base}/${match}` }))
        out.push(file.key.slice(base.length + 1));
      return out.sort();
    };
    expect(await listed('a?b')).toEqual(['a%b', 'a]b', 'axb', 'a{b', 'a}b', 'aéb', 'a😀b'].sort());
    expect(await listed('a[{}]b')).toEqual(['a{b', 'a}b'].sort());
    expect(await listed('a[\\]]b')).toEqual(['a]b']);
    expect(await listed('a[z-a]b')).toEqual(['axb']);
    expect(await listed('a??b')).toEqual([]);
    for (const name of names) await remove(subject(redis), `${base}/${name}`);
  });
});
