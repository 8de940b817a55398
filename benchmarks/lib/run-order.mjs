// The order of the contenders in each repetition of a benchmark (see runOrder).

/**
 * The order in which repetition `rep` runs `n` contenders (their indexes): the rows of a Williams
 * design, a Latin square balanced for what one run leaves to the next. Whatever a run leaves behind
 * (garbage collected on the next run's time, code V8 deoptimizes when that garbage goes, a grown
 * heap) then falls on a different contender from repetition to repetition. A rotated order (A B C,
 * B C A, C A B) would have each contender follow the same one every time and pay for it every
 * time. Row r is `0, 1, n-1, 2, n-2, …` plus r, modulo n; for an odd n, every other repetition runs
 * a row in reverse, which the square needs to be balanced. Over n repetitions (2n for an odd n),
 * each contender runs once in every position and follows every other one equally often.
 */
export function runOrder(n, rep) {
  const first = [0];
  for (let k = 1; first.length < n; k++) {
    first.push(k);
    if (first.length < n) first.push(n - k);
  }
  const row = (r) => first.map((i) => (i + r) % n);
  if (n % 2 === 0) return row(rep % n);
  const r = row((rep >> 1) % n);
  return rep % 2 === 1 ? r.reverse() : r;
}
