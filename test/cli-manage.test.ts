/**
 * `redis-file ls`, `rm`, `mv` and `expire`; rm and ls of a pattern (the count shown, rm --dry-run).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import { CLI, expectOneLine, run, storedKeys } from './helpers/cli.js';
import { closeAll, connect, sharedRedisUrl, subject, uniqueKey } from './helpers/clients.js';
import { get, put } from './helpers/streams.js';

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
    const files = lines.map(
      (line) => JSON.parse(line) as { key: string; state: string; size: number; created: string },
    );
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

  it("--json of stat and ls: the library's FileStat, its consumers and acknowledgements too", async () => {
    const key = uniqueKey('consumed');
    await put(redis, key, Buffer.from('read by a'), { consumers: ['a', 'b'] });
    await get(redis, key, { consumer: 'a' });
    const want = await stat(subject(redis), key);
    const st = await run(['stat', key, '--json']);
    expect(st.code).toBe(0);
    const ls = await run(['ls', key, '--json']);
    expect(ls.code).toBe(0);
    for (const out of [st.stdout, ls.stdout]) {
      expect(JSON.parse(out.toString())).toEqual({
        ...want,
        contentType: null,
        crc32: want.crc32,
        ttl: null,
        created: want.created.toISOString(),
        updated: want.updated.toISOString(),
        consumers: ['a', 'b'],
        acknowledgedBy: ['a'],
      });
    }
    // For people too.
    const human = (await run(['stat', key])).stdout.toString();
    expect(human).toMatch(/^consumers: a, b$/m);
    expect(human).toMatch(/^read by: {2}a$/m);
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

  it('stat shows a content type and metadata holding newlines quoted, one line each', async () => {
    const key = uniqueKey('stat-text');
    await put(redis, key, Buffer.from('x'), {
      contentType: 'text/x\nsize:     0 B',
      metadata: { 'a\nstate': 'aborted', b: 'two words' },
    });
    const s = await run(['stat', key]);
    expect(s.code, s.stderr).toBe(0);
    const lines = s.stdout.toString().trimEnd().split('\n');
    expect(lines.filter((line) => line.startsWith('size:'))).toHaveLength(1);
    expect(lines.filter((line) => line.startsWith('state:'))).toEqual(['state:    complete']);
    expect(lines).toContain(`type:     ${JSON.stringify('text/x\nsize:     0 B')}`);
    expect(lines).toContain(`metadata: ${JSON.stringify('a\nstate')}=aborted`);
    expect(lines).toContain('          b=two words');
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

describe('rm and ls of a pattern', () => {
  async function files(p: string, names: string[]): Promise<string[]> {
    const keys = names.map((name) => `${p}/${name}`);
    for (const key of keys) await put(redis, key, Buffer.from(`file ${key}`));
    return keys;
  }

  it('rm of a pattern removes every file it matches and says how many; the others stay', async () => {
    const p = uniqueKey('rm-pattern');
    await files(p, ['tmp/1', 'tmp/2', 'tmp/sub/3', 'keep/4', 'tmpfile']);
    const r = await run(['rm', `${p}/tmp/*`]);
    expect(r).toMatchObject({ code: 0, stderr: `removed 3 files matching ${JSON.stringify(`${p}/tmp/*`)}\n` });
    expect(r.stdout.length).toBe(0);
    expect(await storedKeys(redis, `${p}/*`)).toEqual([`${p}/keep/4`, `${p}/tmpfile`]);
    // --quiet: no count.
    expect(await run(['rm', '--quiet', `${p}/keep/?`])).toMatchObject({ code: 0, stderr: '' });
    expect(await storedKeys(redis, `${p}/*`)).toEqual([`${p}/tmpfile`]);
  });

  it('rm --dry-run prints what would go, sorted, and removes nothing', async () => {
    const p = uniqueKey('rm-dry');
    const keys = await files(p, ['b', 'a', 'c/d']);
    const r = await run(['rm', '--dry-run', `${p}/*`, `${p}/b`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe(`${p}/a\n${p}/b\n${p}/c/d\n${p}/b\n`);
    expect(r.stderr).toBe(`would remove 3 files matching ${JSON.stringify(`${p}/*`)}\n`);
    expect(await storedKeys(redis, `${p}/*`)).toEqual(keys.sort());
    // As rm would, a dry run fails for a key that holds no file.
    const missing = await run(['rm', '-n', `${p}/nope`]);
    expect(missing.code).toBe(1);
    expect(expectOneLine(missing.stderr)).toContain('ERR_REDIS_FILE_NOT_FOUND');
  });

  it('rm of a pattern that matches nothing fails, unless --force', async () => {
    const pattern = `${uniqueKey('rm-none')}/*`;
    const r = await run(['rm', pattern]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toBe(`redis-file: rm ${JSON.stringify(pattern)}: no file matches this pattern`);
    const forced = await run(['rm', '--force', pattern]);
    expect(forced).toMatchObject({ code: 0, stderr: `removed 0 files matching ${JSON.stringify(pattern)}\n` });
  });

  it('an escaped wildcard removes only the key that holds it', async () => {
    const p = uniqueKey('rm-escaped');
    await files(p, ['a*b', 'axb']);
    expect(await run(['rm', `${p}/a\\*b`])).toMatchObject({ code: 0, stderr: '' });
    expect(await storedKeys(redis, `${p}/*`)).toEqual([`${p}/axb`]);
  });

  it('ls at a terminal follows the listing with the count and the total size', async () => {
    const p = uniqueKey('ls-count');
    await files(p, ['a', 'b', 'c']);
    const size = `file ${p}/a`.length * 3;
    // script(1) gives the command a terminal; stdout and stderr both go to it.
    const r = spawnSync(
      'script',
      ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} ls '${p}/*'`, '/dev/null'],
      {
        env: { ...process.env, REDIS_URL: sharedRedisUrl() },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split(/\r?\n/);
    expect(lines.slice(0, 3).map((line) => line.split(/\s+/).at(-1))).toEqual([`${p}/a`, `${p}/b`, `${p}/c`]);
    expect(lines[3]).toBe(`3 files, ${size} B`);
  });
});
