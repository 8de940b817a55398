/**
 * The line of `redis-file`'s progress bar fits the terminal: whatever the key, the sizes and the
 * rate, it takes at most `columns - 1` characters and keeps its figures whole (cli-progress would
 * cut a longer line at the terminal's width: "… ETA 0."). The line is a pure function of the state,
 * so it is checked here for a fixed number of columns; the bar itself is drawn only on a terminal.
 */
import { describe, expect, it } from 'vitest';
import { type ProgressState, progressLine } from '../src/cli/progress.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const labels = [
  'a',
  'logs/access.log',
  'x'.repeat(28),
  `backups/${'very-long-directory-name/'.repeat(4)}2026-11-30.tar.gz`,
];
const sizes: [number, number | undefined][] = [
  [0, 0],
  [0, undefined],
  [1023.9 * KiB, 1023.9 * KiB],
  [96 * MiB, 190.7 * MiB],
  [1000 * GiB, 1023 * GiB],
  [3 * 1024 * GiB, undefined],
];
const rates = [0, 1, 1023.9 * KiB, 85.1 * MiB];
const states: ProgressState['done'][] = [undefined, 'completed', 'stopped'];

function every(): ProgressState[] {
  const all: ProgressState[] = [];
  for (const label of labels) {
    for (const [bytes, total] of sizes) {
      for (const rate of rates) {
        for (const done of states) all.push({ label, bytes, total, rate, seconds: 12_345, done });
      }
    }
  }
  return all;
}

describe('the progress bar line', () => {
  it('fits 80 columns for any key, size, rate and state, with its figures whole', () => {
    for (const state of every()) {
      const line = progressLine(state, 80);
      expect(line.length, line).toBeLessThanOrEqual(79);
      const eta = / ETA (--|[\d.]+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh)$/;
      if (state.done === undefined && state.total !== undefined) expect(line, line).toMatch(eta);
      if (state.done === 'completed') expect(line, line).toMatch(/ in [\dhdms.]+ {2}[\d.]+ [KMGTP]?i?B\/s$/);
    }
  });

  it('fits a narrower terminal too', () => {
    for (const state of every()) expect(progressLine(state, 60).length).toBeLessThanOrEqual(59);
  });

  it('shows the key, a bar, the share, the sizes, the rate and the time left', () => {
    const line = progressLine(
      { label: 'logs/access.log', bytes: 96 * MiB, total: 190.7 * MiB, rate: 85.1 * MiB, seconds: 1.1 },
      80,
    );
    expect(line).toBe(
      `logs/access.log ${'\u2588'.repeat(8)}${'\u2591'.repeat(7)}  50%   96.0/190.7 MiB  85.1 MiB/s  ETA 1.1s`,
    );
  });

  it('keeps the bar as wide as it was while the rate and the time left change, and on the last line', () => {
    const state = { label: 'logs/access.log', bytes: 96 * MiB, total: 190.7 * MiB, seconds: 1.1 };
    const bar = (line: string): string => /[\u2588\u2591]+/.exec(line)![0];
    const widths = [0, 1, 1023.9 * KiB, 85.1 * MiB].map((rate) => bar(progressLine({ ...state, rate }, 80)).length);
    widths.push(bar(progressLine({ ...state, rate: 1, done: 'completed' }, 80)).length);
    expect(new Set(widths).size, String(widths)).toBe(1);
  });

  it('shortens a long key from the left, where keys differ least', () => {
    const label = `backups/${'very-long-directory-name/'.repeat(4)}2026-11-30.tar.gz`;
    const line = progressLine({ label, bytes: 96 * MiB, total: 190.7 * MiB, rate: 85.1 * MiB, seconds: 1.1 }, 80);
    expect(line).toMatch(/^\u2026[^ ]*2026-11-30\.tar\.gz \u2588+\u2591+ {2}50% /);
  });
});
