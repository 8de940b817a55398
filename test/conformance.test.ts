/**
 * The conformance vectors of docs/format.md (test/conformance/vectors/*.json): each is a file
 * described as its Redis entries, with the outcome a reader must give. The reference reader, written
 * from the specification alone, must give every outcome; so must the package's reader on a real Redis.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream } from '../src/index.js';
import { render } from './conformance/generate.mjs';
import { type FieldValue, type ReadRequest, referenceRead, type StreamEntry } from './conformance/reference-reader.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';

type Outcome = { bytes: { hex: string } } | { error: string; deliveredPrefixOf: { hex: string } };

interface Vector {
  name: string;
  description: string;
  chunkSize: number;
  meta: Record<string, string> | null;
  stream: StreamEntry[];
  read: ReadRequest;
  outcome: Outcome;
}

const dir = fileURLToPath(new URL('./conformance/vectors/', import.meta.url));
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort();
const groups = files.map((file) => ({
  file,
  vectors: (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { vectors: Vector[] }).vectors,
}));

/** What a read gave: its bytes, or its error code with the bytes delivered before it. */
type Result = { bytes: Buffer } | { error: string; delivered: Buffer };

/** Assert that `result` is the vector's outcome: the same bytes, or the same code after a prefix. */
function expectOutcome(result: Result, outcome: Outcome): void {
  if ('bytes' in outcome) {
    expect('error' in result ? { error: result.error } : { hex: result.bytes.toString('hex') }).toEqual({
      hex: outcome.bytes.hex,
    });
    return;
  }
  if (!('error' in result)) {
    expect({ bytes: result.bytes.toString('hex') }).toEqual({ error: outcome.error });
    return;
  }
  expect(result.error).toBe(outcome.error);
  // Bytes delivered before the error are a prefix of what the vector allows (never a damaged piece's).
  expect(outcome.deliveredPrefixOf.hex.startsWith(result.delivered.toString('hex'))).toBe(true);
}

describe('conformance vectors', () => {
  it('are the output of test/conformance/generate.mjs', () => {
    const generated = render();
    expect(files).toEqual(Object.keys(generated).sort());
    for (const [file, text] of Object.entries(generated)) expect(readFileSync(join(dir, file), 'utf8')).toBe(text);
  });

  it('have unique names', () => {
    const names = groups.flatMap(({ vectors }) => vectors.map((v) => v.name));
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('reference reader (docs/format.md alone)', () => {
  for (const { file, vectors } of groups) {
    describe(file, () => {
      for (const v of vectors) {
        it(`${v.name}: ${v.description}`, () => {
          expectOutcome(referenceRead(v.meta, v.stream, v.read, Date.now()), v.outcome);
        });
      }
    });
  }
});

describe('package reader on Redis', () => {
  const redis = connect();
  const loaded: string[] = [];
  afterAll(async () => {
    if (loaded.length > 0) await redis.del(...loaded);
    await closeAll();
  });

  const toRedis = (value: FieldValue): string | Buffer =>
    typeof value === 'string' ? value : Buffer.from(value.hex, 'hex');

  /** Store the vector at a key of its own: the hash, then each entry with its explicit id, in order. */
  async function load(v: Vector): Promise<string> {
    const key = uniqueKey(v.name);
    // The stream is named by the hash's generation; a hash without one uses the header's.
    const header = v.stream.find((e) => e.id === '0-1')?.fields.find(([name]) => name === 'gen')?.[1];
    const gen = v.meta?.gen ?? (typeof header === 'string' ? header : '0000000000000000');
    const meta = `rfs:{${key}}:meta`;
    const chunks = `rfs:{${key}}:chunks:${gen}`;
    loaded.push(meta, chunks, `rfs:{${key}}:events`);
    await redis.del(meta, chunks, `rfs:{${key}}:events`);
    if (v.meta) await redis.hset(meta, v.meta);
    for (const entry of v.stream) {
      await redis.xadd(chunks, entry.id, ...entry.fields.flatMap(([name, value]) => [name, toRedis(value)]));
    }
    return key;
  }

  function read(key: string, request: ReadRequest): Promise<Result> {
    const { start, end, follow } = request;
    const parts: Buffer[] = [];
    return new Promise((resolve) => {
      // A reader that waited instead of failing would fail the test with ERR_REDIS_FILE_TIMEOUT.
      const stream = createRedisReadStream(subject(redis), key, {
        start,
        ...(end === null ? {} : { end }),
        follow,
        idleTimeout: 5000,
      });
      stream.on('data', (part: Buffer) => parts.push(part));
      stream.on('end', () => resolve({ bytes: Buffer.concat(parts) }));
      stream.on('error', (err: Error & { code?: string }) =>
        resolve({ error: String(err.code ?? err.message), delivered: Buffer.concat(parts) }),
      );
    });
  }

  for (const { file, vectors } of groups) {
    describe(file, () => {
      for (const v of vectors) {
        it(`${v.name}: ${v.description}`, async () => {
          const key = await load(v);
          expectOutcome(await read(key, v.read), v.outcome);
        });
      }
    });
  }
});
