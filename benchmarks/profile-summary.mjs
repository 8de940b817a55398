#!/usr/bin/env node
// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by file or
// package, and the inclusive time of the package's own functions.
//
// Usage: node benchmarks/profile-summary.mjs <file.cpuprofile> [top N]
//
// Example, profiling the write case:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof benchmarks/run.mjs --only write --reps 3 --no-docs --out /tmp/w.json
//   node benchmarks/profile-summary.mjs /tmp/prof/*.cpuprofile

import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node benchmarks/profile-summary.mjs <file.cpuprofile> [top N]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node from the samples and their time deltas (microseconds).
const self = new Map();
for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);

function where(cf) {
  const url = cf.url || '';
  if (!url) return cf.functionName.startsWith('(') ? cf.functionName : '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:.*\/)?([^/]+)$/.exec(url);
  if (nm) return `${nm[1]}/${nm[2]}`;
  if (url.startsWith('node:')) return url;
  const m = /\/(dist\/(?:esm|cjs)\/[^/]+|benchmarks\/.+)$/.exec(url);
  return m ? m[1] : url;
}
const name = (cf) => `${cf.functionName || '(anonymous)'} ${where(cf)}:${cf.lineNumber + 1}`;

const byFn = new Map();
const byFile = new Map();
for (const [id, t] of self) {
  const cf = nodes.get(id).callFrame;
  byFn.set(name(cf), (byFn.get(name(cf)) ?? 0) + t);
  byFile.set(where(cf), (byFile.get(where(cf)) ?? 0) + t);
}

// Inclusive time of every function of the package (dist/), counted once per sample.
const inclusive = new Map();
profile.samples.forEach((id, i) => {
  const seen = new Set();
  for (let n = id; n !== undefined; n = parent.get(n)) {
    const cf = nodes.get(n).callFrame;
    if (!/\/dist\/(esm|cjs)\//.test(cf.url)) continue;
    const k = name(cf);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
});

const pct = (t) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms`;
const print = (title, map, n) => {
  console.log(`\n${title}`);
  for (const [k, t] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(t)}  ${k}`);
};
// Who calls the heaviest functions: self time split by the calling frame (2 levels up).
const callers = new Map();
for (const [id, t] of self) {
  const k = name(nodes.get(id).callFrame);
  const p1 = parent.get(id);
  const p2 = p1 === undefined ? undefined : parent.get(p1);
  const via = [p1, p2]
    .filter((x) => x !== undefined)
    .map((x) => name(nodes.get(x).callFrame))
    .join(' <- ');
  if (!callers.has(k)) callers.set(k, new Map());
  callers.get(k).set(via, (callers.get(k).get(via) ?? 0) + t);
}

console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
print('self time by file / package', byFile, 15);
print('self time by function', byFn, top);
print('inclusive time of redis-file-stream functions', inclusive, 15);
console.log('\ncallers of the heaviest functions (self time by caller <- its caller)');
const heaviest = [...byFn]
  .filter(([k]) => !k.startsWith('('))
  .sort((a, b) => b[1] - a[1])
  .slice(0, 4);
for (const [k] of heaviest) {
  console.log(`  ${k}`);
  for (const [via, t] of [...callers.get(k)].sort((a, b) => b[1] - a[1]).slice(0, 4))
    console.log(`    ${pct(t)}  <- ${via}`);
}
