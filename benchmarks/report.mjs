#!/usr/bin/env node
// Regenerate docs/benchmarks.md, docs/benchmarks.svg (and docs/benchmarks-latency.svg) from results
// files, without running the benchmark (e.g. after editing the hand-written intro, or the generator
// itself).
//
// Usage: node benchmarks/report.mjs [benchmarks/results/<date>.json [<date>-only-<cases>.json …]]
// The first file is a full run; the cases of every further file (a partial run, `--only`) take the
// place of the same cases in it, each marked with the run it came from. Default: the newest full
// results file, and the partial runs of its date or later.

import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSummary, mergeResults, newestFullResults, partialResultsSince, writeDocs } from './lib/report.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'benchmarks', 'results');
let [file, ...partials] = process.argv.slice(2).map((f) => resolve(f));
if (!file) {
  file = newestFullResults(dir);
  if (!file) throw new Error(`no full results in ${dir}: run npm run bench first`);
  partials = partialResultsSince(dir, JSON.parse(readFileSync(file, 'utf8')).date);
}
let output = JSON.parse(readFileSync(file, 'utf8'));
for (const p of partials) output = mergeResults(output, JSON.parse(readFileSync(p, 'utf8')), relative(root, p));
console.log(formatSummary(output));
const written = writeDocs(output, { root, resultsFile: relative(root, file) });
console.log(`docs: ${written.map((f) => relative(process.cwd(), f)).join(', ')}`);
