/**
 * The scripts take every name and constant of the storage format from src/format.ts: no Lua body
 * spells one out, every script passes its keys in the one order, and every script compiles.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { EMPTY_CRC, Event, Field, Flag, Meta, POSITION_DONE, State } from '../src/format.js';
import * as consumers from '../src/scripts/consumers.js';
import { defineScript, type Script } from '../src/scripts/define.js';
import * as file from '../src/scripts/file.js';
import * as read from '../src/scripts/read.js';
import * as stat from '../src/scripts/stat.js';
import * as writer from '../src/scripts/writer.js';
import { closeAll, connect } from './helpers/clients.js';

const redis = connect();
afterAll(closeAll);

const scripts = [consumers, file, read, stat, writer].flatMap((module) =>
  Object.values(module).filter(
    (v): v is Script<never, string, unknown> => typeof v === 'object' && v !== null && 'sha' in v,
  ),
);

/** A script's Lua without the generated tables of the format's names (which are the one place they are spelled). */
function body(source: string): string {
  return source
    .split('\n')
    .filter((line) => !/^local [MFSEC] = \{/.test(line))
    .join('\n');
}

describe('scripts', () => {
  it('there are scripts to check', () => {
    expect(scripts.map((s) => s.name).sort()).toEqual(
      [
        'abandon',
        'abort',
        'ack',
        'ack-announced',
        'commit',
        'create',
        'expire',
        'join',
        'open',
        'remove',
        'rename',
        'repair',
        'resume',
        'stored',
        'touch',
        'trim',
        'used-memory',
      ].sort(),
    );
  });

  it('no Lua body spells out a field name, state, event or format constant', () => {
    const names = new Set<string>([
      ...Object.values(Meta),
      ...Object.values(Field),
      ...Object.values(State),
      ...Object.values(Event),
      ...Object.values(Flag),
      POSITION_DONE,
      EMPTY_CRC,
    ]);
    for (const s of scripts) {
      const literals = [...body(s.source).matchAll(/'([^']*)'/g)].map((m) => m[1]!);
      expect(
        literals.filter((l) => names.has(l)),
        `script ${s.name}`,
      ).toEqual([]);
    }
  });

  it('keys are declared in the one order every script uses', () => {
    expect(() => defineScript({ name: 'bad', keys: ['events', 'meta'], args: [], lua: 'return 1' })).toThrow(
      /keys must follow the order/,
    );
    for (const s of scripts) expect(s.source, s.name).toContain('local K = {');
  });

  it('every script compiles on Redis', async () => {
    for (const s of scripts) expect(await redis.script('LOAD', s.source), s.name).toBe(s.sha);
  });
});

describe('CRC-32', () => {
  it('the native implementation loads here, and combination gives the CRC of the concatenation', async () => {
    const { crc32, crc32Combine, crcImplementation } = await import('../src/crc.js');
    const { crc32: zlibCrc } = await import('node:zlib');
    expect(await crcImplementation()).toBe('@node-rs/crc32');
    for (const [a, b] of [
      ['', ''],
      ['a', ''],
      ['', 'b'],
      ['hello, ', 'world'],
      ['x'.repeat(100_000), 'y'.repeat(3)],
      // The same length again, then another: the operator kept for the last length is reused only for it.
      ['abc', 'xyz'],
      ['q', 'hello'],
      ['z'.repeat(70_000), 'w'.repeat(65_536)],
      ['v', 'u'.repeat(65_536)],
    ] as const) {
      const [ba, bb] = [Buffer.from(a), Buffer.from(b)];
      expect(crc32(Buffer.concat([ba, bb]))).toBe(zlibCrc(Buffer.concat([ba, bb])));
      expect(crc32Combine(crc32(ba), crc32(bb), bb.length)).toBe(zlibCrc(Buffer.concat([ba, bb])));
    }
  });
});
