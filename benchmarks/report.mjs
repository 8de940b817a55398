#!/usr/bin/env node
// Regenerate docs/benchmarks.md and docs/benchmarks.svg from a results JSON, without running the
// benchmark (e.g. after editing the hand-written intro, or the generator itself).
//
// Usage: node benchmarks/report.mjs [benchmarks/results/<date>.json]
// Default: the newest full (not -quick) results file.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSummary, writeDocs } from './lib/report.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let file = process.argv[2];
if (!file) {
  const dir = join(root, 'benchmarks', 'results');
  const full = readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort();
  if (full.length === 0) throw new Error(`no full results in ${dir}: run npm run bench first`);
  file = join(dir, full[full.length - 1]);
}
const output = JSON.parse(readFileSync(resolve(file), 'utf8'));
console.log(formatSummary(output));
const written = writeDocs(output, { root, resultsFile: relative(root, resolve(file)) });
console.log(`docs: ${written.map((f) => relative(process.cwd(), f)).join(', ')}`);
