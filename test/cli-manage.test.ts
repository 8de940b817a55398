/**
 * `redis-file ls`, `rm`, `mv` and `expire`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { expectOneLine, run } from './helpers/cli.js';
import { put } from './helpers/streams.js';

const redis = connect();
afterAll(closeAll);

describe('ls', () => {
  it('lists exactly the 2000 files under a pattern, as JSON lines and for people', { timeout: 120_000 }, async () => {
    const prefix = uniqueKey('many');
    const keys = Array.from({ length: 2000 }, (_, i) => `${prefix}/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 200) {
      await Promise.all(keys.slice(i, i + 200).map((key, j) => put(redis, key, Buffer.from(`file ${i + j}`))));
    }
    // A file outside the pattern that shares the start of its name.
    await put(redis, `${prefix}-other`, Buffer.from('not listed'));

    const json = await run(['ls', `${prefix}/*`, '--json']);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const lines = json.stdout.toString().trim().split('\n');
    expect(lines).toHaveLength(keys.length);
    const files = lines.map((line) => JSON.parse(line) as { key: string; state: string; size: number; created: string });
    expect(files.map((f) => f.key).sort()).toEqual(keys);
    for (const f of files) {
      expect(f.state).toBe('complete');
      expect(f.size).toBe(`file ${Number(f.key.slice(-4))}`.length);
      expect(new Date(f.created).toISOString()).toBe(f.created);
    }

    const human = await run(['ls', `${prefix}/*`]);
    expect(human.code).toBe(0);
    const rows = human.stdout.toString().trim().split('\n');
    expect(rows.map((row) => row.split(/\s+/).at(-1))).toEqual(keys);
    expect(rows[0]).toMatch(/^complete\s+6 B\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+/);
  });

  it('prints nothing for a pattern that matches nothing', async () => {
    const r = await run(['ls', `${uniqueKey('none')}/*`]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.length).toBe(0);
  });
});

describe('rm, mv, expire', () => {
  it('removes several files; stat then fails; a missing key fails unless --force', async () => {
    const keys = [uniqueKey('rm'), uniqueKey('rm'), uniqueKey('rm')];
    for (const key of keys) await put(redis, key, Buffer.from(key));
    expect(await run(['rm', ...keys])).toMatchObject({ code: 0, stderr: '' });
    for (const key of keys) {
      const s = await run(['stat', key]);
      expect(s.code).toBe(1);
      expect(expectOneLine(s.stderr)).toContain(JSON.stringify(key));
    }
    const again = await run(['rm', keys[0]!]);
    expect(again.code).toBe(1);
    expect(expectOneLine(again.stderr)).toContain(JSON.stringify(keys[0]));
    expect((await run(['rm', '--force', keys[0]!])).code).toBe(0);
  });

  it('renames, and sets and removes the expiry', async () => {
    const from = uniqueKey('mv-from');
    const to = uniqueKey('mv-to');
    await put(redis, from, Buffer.from('moving'));
    expect(await run(['mv', from, to])).toMatchObject({ code: 0, stderr: '' });
    expect((await run(['get', to])).stdout.toString()).toBe('moving');
    expect((await run(['stat', from])).code).toBe(1);

    expect((await run(['expire', to, '10m'])).code).toBe(0);
    const ttl = (await stat(redis, to)).ttl;
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);
    expect((await run(['expire', to, 'none'])).code).toBe(0);
    expect((await stat(redis, to)).ttl).toBeUndefined();
    expect((await run(['expire', from, '60'])).code).toBe(1);
  });
});
