/**
 * The benchmarks' run order (benchmarks/lib/run-order.mjs): every repetition runs each contender
 * once, and over a full cycle of repetitions (n, or 2n for an odd n) each contender runs once in
 * every position per square and follows every other one equally often, so that what one run leaves
 * behind is not always charged to the same contender.
 */
import { describe, expect, it } from 'vitest';
import { runOrder } from '../benchmarks/lib/run-order.mjs';

const cycle = (n: number) => (n % 2 === 0 ? n : 2 * n);

describe('runOrder', () => {
  for (let n = 1; n <= 9; n++) {
    it(`${n} contenders: each repetition is a permutation, balanced over ${cycle(n)} repetitions`, () => {
      const reps = cycle(n);
      const positions = new Map<string, number>();
      const follows = new Map<string, number>();
      for (let rep = 0; rep < reps; rep++) {
        const order = runOrder(n, rep);
        expect([...order].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
        order.forEach((c, i) => {
          positions.set(`${c}@${i}`, (positions.get(`${c}@${i}`) ?? 0) + 1);
          if (i > 0) follows.set(`${order[i - 1]}>${c}`, (follows.get(`${order[i - 1]}>${c}`) ?? 0) + 1);
        });
      }
      // Every contender in every position, equally often.
      expect(positions.size).toBe(n * n);
      expect(new Set(positions.values())).toEqual(new Set([reps / n]));
      // Every ordered pair of different contenders adjacent, equally often.
      expect(follows.size).toBe(n * (n - 1));
      if (n > 1) expect(new Set(follows.values())).toEqual(new Set([reps / n]));
    });
  }

  it('repeats after a full cycle', () => {
    for (const n of [4, 7]) expect(runOrder(n, cycle(n) + 1)).toEqual(runOrder(n, 1));
  });

  it('is not a rotation: a contender follows different ones from one repetition to the next', () => {
    const before = (rep: number) => {
      const order = runOrder(5, rep);
      return order[order.indexOf(2) - 1];
    };
    expect(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(before)).size).toBeGreaterThan(2);
  });
});
