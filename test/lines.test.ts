import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, ErrorCodes, lines, RedisFileError } from '../src/index.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
import { put } from './helpers/streams.js';

async function split(parts: (string | Buffer)[], maxLineLength?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const line of Readable.from(parts.map((p) => Buffer.from(p))).pipe(lines({ maxLineLength })))
    out.push(line as string);
  return out;
}

/** The UTF-8 bytes of `text` in pieces of the sizes `cuts` gives, over and over. */
function cutInto(text: string, cuts: number[]): Buffer[] {
  const bytes = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const n = cuts[i % cuts.length]!;
    parts.push(bytes.subarray(offset, offset + n));
    offset += n;
  }
  return parts;
}

/** What splitting the whole text at once gives: lines without their \n or \r\n, no empty last one. */
function expected(text: string): string[] {
  if (text === '') return [];
  const all = text.split('\n').map((l, i, a) => (i < a.length - 1 && l.endsWith('\r') ? l.slice(0, -1) : l));
  if (all.at(-1) === '') all.pop();
  else all[all.length - 1] = all.at(-1)!.replace(/\r$/, '');
  return all;
}

describe('lines()', () => {
  it('splits on \\n and \\r\\n, keeps empty lines, emits a last line without an ending', async () => {
    expect(await split(['a\nb\r\n\nc'])).toEqual(['a', 'b', '', 'c']);
    expect(await split(['a\n'])).toEqual(['a']);
    expect(await split([])).toEqual([]);
  });

  it('handles a \\r\\n and a multi-byte character split across chunks', async () => {
    expect(await split(['one\r', '\ntwo\r', '\n'])).toEqual(['one', 'two']);
    const euro = Buffer.from('€uro\nnext\n');
    expect(await split([euro.subarray(0, 1), euro.subarray(1, 2), euro.subarray(2)])).toEqual(['€uro', 'next']);
  });

  it('fails on a line longer than maxLineLength, whole in one chunk or spread over many', async () => {
    await expect(split(['short\n' + 'x'.repeat(101) + '\n'], 100)).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_LINE_TOO_LONG',
    });
    const spread = Array.from({ length: 50 }, () => 'y'.repeat(10));
    await expect(split(spread, 100)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_LINE_TOO_LONG' });
    expect(await split(['x'.repeat(100) + '\r\n'], 100)).toEqual(['x'.repeat(100)]);
  });

  it('property: any text, any split, gives the lines of the whole text', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom('a', 'é', '€', '\n', '\r', '𝄞', ' ') }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1 }),
        async (text, cuts) => {
          expect(await split(cutInto(text, cuts))).toEqual(expected(text));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('measures a line without its line ending, a last line ending in \\r too', async () => {
    expect(await split(['abc\r'], 3)).toEqual(['abc']);
    expect(await split(['ab', 'c\r'], 3)).toEqual(['abc']);
    expect(await split(['x\nabc\r'], 3)).toEqual(['x', 'abc']);
    await expect(split(['abcd\r'], 3)).rejects.toMatchObject({ code: ErrorCodes.LINE_TOO_LONG });
    // Of the package's one error class, as every coded error of it.
    await expect(split(['abcd\r'], 3)).rejects.toBeInstanceOf(RedisFileError);
  });

  it('property: any text, any split, any maxLineLength: the lines of the whole text, or a failure exactly when one is too long', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom('a', '€', '\n', '\r', '𝄞') }),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1 }),
        fc.integer({ min: 1, max: 6 }),
        async (text, cuts, max) => {
          const parts = cutInto(text, cuts);
          const want = expected(text);
          if (want.every((l) => l.length <= max)) expect(await split(parts, max)).toEqual(want);
          else await expect(split(parts, max)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_LINE_TOO_LONG' });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects bad options at the call', () => {
    expect(() => lines({ maxLineLength: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => lines({ maxLineLength: '5' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => lines({ maxLineLength: null as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => lines([] as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => lines({ maxLength: 5 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('lines() after a Redis read stream', () => {
  const redis = connect();
  afterAll(closeAll);

  it('yields every line of a stored gzipped log', async () => {
    const key = uniqueKey('log');
    const text =
      Array.from({ length: 20_000 }, (_, i) => `2026-11-30T00:00:${i % 60},GET,/x/${i}`).join('\r\n') + '\r\n';
    await put(redis, key, Buffer.from(text), { compress: true, chunkSize: 4096 });
    const got: string[] = [];
    await pipeline(
      createRedisReadStream(subject(redis), key, { decompress: true }),
      lines(),
      async (source: AsyncIterable<string>) => {
        for await (const line of source) got.push(line);
      },
    );
    expect(got.length).toBe(20_000);
    expect(got[123]).toBe('2026-11-30T00:00:3,GET,/x/123');
  });
});
