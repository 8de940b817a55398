// Turns a results JSON (see run.mjs) into the stdout summary, docs/benchmarks.md and
// docs/benchmarks.svg. The markdown keeps everything above the GENERATED marker (the hand-written
// intro and findings) and regenerates everything below it, so the page always matches the JSON.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { esc, fmt, table, times } from './format.mjs';
import { LATENCY_SVG, latencySection, renderLatencySvg } from './latency-report.mjs';

export const MARKER =
  '<!-- GENERATED: everything below this line is written by benchmarks/run.mjs (or benchmarks/report.mjs) from the results JSON. Edit above it only. -->';

const DEFAULT_INTRO = `# Benchmarks

\`npm run bench\` builds the package, starts a private redis-server (or uses \`REDIS_URL\`) and runs
each case below several times, alternating the contenders. See \`benchmarks/run.mjs\`.
`;

/** Comparisons worth a summary row: every targeted one, and the informational ones outside the sweep. */
function summaryRows(output) {
  const rows = [];
  for (const c of output.cases) {
    if (c.error) {
      rows.push({ caseId: c.id, target: `${c.id}: FAILED`, measured: c.error.slice(0, 60), result: 'error' });
      continue;
    }
    // A sweep shows in its own table; in the summary, only the comparisons it marks for it.
    if (c.sweep) {
      for (const cmp of c.comparisons.filter((x) => x.summary)) {
        rows.push({ caseId: c.id, cmp, target: cmp.label, measured: measured(cmp, c.unit), result: '(no target)' });
      }
      continue;
    }
    // The latency case has a dozen comparisons per RTT: its targets, and all those at the longest RTT.
    const longest = c.latency ? Math.max(...c.latency.rtts.map((at) => at.rttMs)) : undefined;
    const shown = c.latency
      ? c.comparisons.filter((cmp) => cmp.target || cmp.id.startsWith(`latency-${longest}-`))
      : c.comparisons;
    for (const cmp of shown) {
      rows.push({
        caseId: c.id,
        cmp,
        target: cmp.target?.text ?? cmp.label,
        measured: measured(cmp, c.unit),
        result: cmp.target ? (cmp.met ? 'met' : 'MISSED') : '(no target)',
      });
    }
  }
  return rows;
}

function measured(cmp, caseUnit) {
  const unit = cmp.unit ?? caseUnit;
  if (cmp.kind === 'value') return `${Number.isInteger(cmp.value) ? cmp.value : fmt(cmp.value)} ${unit}`;
  const pair = `${fmt(cmp.contenderMedian)} vs ${fmt(cmp.baselineMedian)} ${unit}`;
  if (cmp.kind === 'difference') return `${cmp.value >= 0 ? '+' : ''}${fmt(cmp.value)} ${unit} (${pair})`;
  if (cmp.target?.on === 'factor') return `${times(cmp.factor)} better (${pair})`;
  return `${times(cmp.ratio)} (${pair})`;
}

/** The concise table printed at the end of a run. */
export function formatSummary(output) {
  const rows = summaryRows(output);
  const head = { target: 'target', measured: 'measured (medians)', result: 'result' };
  const w1 = Math.max(head.target.length, ...rows.map((r) => r.target.length));
  const w2 = Math.max(head.measured.length, ...rows.map((r) => r.measured.length));
  const line = (r) => `${r.target.padEnd(w1)}  ${r.measured.padEnd(w2)}  ${r.result}`;
  const targeted = rows.filter((r) => r.cmp?.target);
  const met = targeted.filter((r) => r.cmp.met).length;
  const title = `summary${output.quick ? ' (quick: smoke check, small sizes, 1 run each; timings not meaningful)' : ''}: ${met} of ${targeted.length} targets met`;
  const crc = `CRC-32 of the package: ${output.machine.crc32 ?? 'unknown'}`;
  return [title, crc, line(head), `${'-'.repeat(w1)}  ${'-'.repeat(w2)}  ------`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG chart: one horizontal bar per comparison, "how many times better than the baseline" on a
// log scale (1x = as good as the baseline), the target as a tick, green met / red missed / grey
// no target. Plain SVG text, no libraries, readable on GitHub in light and dark mode (own
// background).

function chartLabel(cmp) {
  if (cmp.better === 'lower') return `${cmp.label} (latency)`;
  return cmp.label;
}

/** The factor a target stands for on the "times better" axis. */
function targetFactor(cmp) {
  const t = cmp.target;
  if (!t) return undefined;
  if (t.on === 'factor') return t.value;
  return cmp.better === 'lower' ? 1 / t.value : t.value;
}

export function renderSvg(output) {
  const bars = [];
  const notes = [];
  for (const c of output.cases) {
    if (c.error || c.sweep || c.latency) continue; // the latency case has a chart of its own
    for (const cmp of c.comparisons) {
      if (cmp.kind === 'difference') notes.push({ cmp, unit: c.unit });
      else bars.push(cmp);
    }
  }
  const sweep = output.cases.find((c) => c.sweep && !c.error);

  // Widths from the text, at about 7 px a character of 13 px sans-serif: long labels are not cut.
  const charW = 7;
  const W = 900;
  const left = Math.max(330, 26 + Math.max(0, ...bars.map((b) => chartLabel(b).length)) * charW);
  const right = 90;
  const plotW = W - left - right;
  const rowH = 26;
  const top = 64;
  const maxFactor = Math.max(4, ...bars.map((b) => b.factor), ...bars.map((b) => targetFactor(b) ?? 0));
  const minFactor = Math.min(0.5, ...bars.map((b) => b.factor), ...bars.map((b) => targetFactor(b) ?? 1));
  const lo = 2 ** Math.floor(Math.log2(minFactor));
  const hi = 2 ** Math.ceil(Math.log2(maxFactor));
  const x = (f) => left + ((Math.log2(f) - Math.log2(lo)) / (Math.log2(hi) - Math.log2(lo))) * plotW;
  const plotH = bars.length * rowH;
  const notesY = top + plotH + 60;
  // A note whose target does not fit on its line gets a second line for it.
  const noteLines = [];
  for (const { cmp, unit } of notes) {
    const color = cmp.target ? (cmp.met ? '#1a7f37' : '#cf222e') : '#1f2328';
    const figure = `${cmp.value >= 0 ? '+' : ''}${fmt(cmp.value)} ${unit} (${fmt(cmp.contenderMedian)} vs ${fmt(cmp.baselineMedian)} ${unit})`;
    const text = `${cmp.label}: ${figure}`;
    const aim = cmp.target ? `target ${cmp.target.text}: ${cmp.met ? 'met' : 'MISSED'}` : '';
    if (!aim) noteLines.push({ text, color });
    else if ((text.length + aim.length + 2) * charW < W - 32) noteLines.push({ text: `${text}; ${aim}`, color });
    else noteLines.push({ text, color }, { text: aim, color, indent: 16 });
  }
  const H = notesY + noteLines.length * 20 + (sweep ? 20 : 0) + 44;

  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="16" y="26" font-size="16" font-weight="600" fill="#1f2328">redis-file-stream ${esc(output.machine.package)} vs baselines — ${esc(output.date)}${output.quick ? ' (quick run)' : ''}</text>`,
  );
  out.push(
    `<text x="16" y="46" fill="#59636e">times better than the baseline (medians, log scale; right of 1x: redis-file-stream better). Black tick: target.</text>`,
  );
  out.push(
    `<text x="16" y="${top + plotH + 34}" fill="#59636e" font-size="12"><tspan fill="#2da44e" font-weight="600">■</tspan> target met   <tspan fill="#cf222e" font-weight="600">■</tspan> target missed   <tspan fill="#8c959f" font-weight="600">■</tspan> no target</text>`,
  );
  // Grid.
  for (let f = lo; f <= hi + 1e-9; f *= 2) {
    const gx = x(f).toFixed(1);
    out.push(
      `<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${top + plotH}" stroke="${f === 1 ? '#1f2328' : '#d1d9e0'}" stroke-width="${f === 1 ? 1.5 : 1}"/>`,
    );
    out.push(
      `<text x="${gx}" y="${top + plotH + 16}" text-anchor="middle" fill="#59636e" font-size="11">${f >= 1 ? f : `1/${1 / f}`}x</text>`,
    );
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const color = b.target ? (b.met ? '#2da44e' : '#cf222e') : '#8c959f';
    const x1 = x(Math.min(1, b.factor));
    const x2 = x(Math.max(1, b.factor));
    out.push(
      `<text x="${left - 10}" y="${y + rowH / 2 + 4}" text-anchor="end" fill="#1f2328">${esc(chartLabel(b))}</text>`,
    );
    out.push(
      `<rect x="${x1.toFixed(1)}" y="${y + 5}" width="${Math.max(1.5, x2 - x1).toFixed(1)}" height="${rowH - 10}" fill="${color}" rx="2"><title>${esc(`${b.label}: ${fmt(b.factor)}x (${b.contender} ${b.contenderMedian} vs ${b.baseline} ${b.baselineMedian})`)}</title></rect>`,
    );
    const tf = targetFactor(b);
    if (tf !== undefined) {
      const tx = x(tf).toFixed(1);
      out.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#1f2328" stroke-width="2.5"/>`);
    }
    out.push(
      `<text x="${(x2 + 6).toFixed(1)}" y="${y + rowH / 2 + 4}" fill="#1f2328" font-weight="600" stroke="#ffffff" stroke-width="4" paint-order="stroke">${fmt(b.factor)}x</text>`,
    );
  });
  let ny = notesY;
  for (const { text, color, indent = 0 } of noteLines) {
    out.push(`<text x="${16 + indent}" y="${ny}" fill="${color}">${esc(text)}</text>`);
    ny += 20;
  }
  if (sweep) {
    const best = (k) => sweep.sweep.reduce((a, r) => (r[k] > a[k] ? r : a));
    const lbl = (cs) => (cs >= 1048576 ? `${cs / 1048576} MiB` : `${cs / 1024} KiB`);
    out.push(
      `<text x="16" y="${ny}" fill="#1f2328">${esc(`chunk size sweep: fastest write at ${lbl(best('write').chunkSize)}, fastest read at ${lbl(best('read').chunkSize)} (default 256 KiB; table in docs/benchmarks.md)`)}</text>`,
    );
    ny += 20;
  }
  const m = output.machine;
  out.push(
    `<text x="16" y="${H - 14}" fill="#59636e" font-size="11">${esc(`${m.cpus} x ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}, Redis ${m.redis}, ioredis ${m.ioredis}, CRC-32 ${m.crc32 ?? '?'}, commit ${(m.commit ?? '?').slice(0, 10)}`)}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Markdown

const FIELD_NAMES = {
  mibps: 'MiB/s',
  ms: 'ms',
  aggregateMiBps: 'aggregate MiB/s',
  perReaderMiBps: 'MiB/s per reader',
  writerMiBps: 'writer MiB/s',
  lagAfterWriterMs: 'last reader after writer, ms',
  peakRssMiB: 'peak RSS MiB',
  vmHwmMiB: 'VmHWM MiB',
  startRssMiB: 'RSS at start MiB',
  peakWriteRssMiB: 'peak RSS while writing MiB',
  writeMiBps: 'write MiB/s',
  readMiBps: 'read MiB/s',
  samples: 'RSS samples',
  beforeRssMiB: 'RSS before the write MiB',
  peakMiB: 'peak used_memory MiB',
  limitMiB: 'maxRedisMemory MiB',
  overMiB: 'peak - limit MiB',
  usedMemorySamples: 'used_memory samples',
  p50: 'p50 ms',
  p90: 'p90 ms',
  p99: 'p99 ms',
  max: 'max ms',
  mean: 'mean ms',
  writes: 'writes counted',
  nodeCpuMs: 'Node CPU ms',
  redisCpuMs: 'Redis CPU ms',
  pageFaults: 'page faults',
  load1: 'load avg',
};

function caseSection(c) {
  const lines = [`### ${c.title} (\`${c.id}\`)`, ''];
  if (c.error) {
    lines.push(`**This case failed:** ${c.error}`, '');
    return lines.join('\n');
  }
  lines.push(c.description, '');
  if (c.from) lines.push(sourceOf(c.from), '');
  if (c.latency) {
    lines.push(latencySection(c));
    return lines.join('\n');
  }
  if (c.sweep) {
    const lbl = (cs) => (cs >= 1048576 ? `${cs / 1048576} MiB` : `${cs / 1024} KiB`);
    lines.push(
      table(
        ['chunk size', 'write MiB/s', 'raw XADD MiB/s', 'write / raw', 'read MiB/s', 'raw XRANGE MiB/s', 'read / raw'],
        c.sweep.map((r) => [
          r.chunkSize === 262144 ? `**${lbl(r.chunkSize)}** (default)` : lbl(r.chunkSize),
          fmt(r.write),
          fmt(r.rawWrite),
          times(r.writeRatio),
          fmt(r.read),
          r.rawReadLoop ? `${fmt(r.rawRead)} (${r.rawReadLoop})` : fmt(r.rawRead),
          times(r.readRatio),
        ]),
      ),
      '',
    );
    lines.push(
      `Runs (MiB/s): ${c.contenders.map((k) => `${k.name}: ${k.runs.map((r) => fmt(r.mibps)).join(', ')}`).join('; ')}.`,
      '',
    );
    return lines.join('\n');
  }
  if (c.clients) lines.push(clientTables(c));
  else lines.push(contenderTable(c), '');
  for (const cmp of c.comparisons) {
    const verdict = cmp.target ? ` — target ${cmp.target.text}: **${cmp.met ? 'met' : 'missed'}**` : '';
    if (cmp.kind === 'difference') {
      const sign = (x) => `${x >= 0 ? '+' : ''}${fmt(x)}`;
      const details = [`${fmt(cmp.contenderMedian)} vs ${fmt(cmp.baselineMedian)} ${c.unit}`];
      if (cmp.vmHwmGrowth !== undefined) details.push(`VmHWM: ${sign(cmp.vmHwmGrowth)} ${c.unit}`);
      if (cmp.pairedDifferences)
        details.push(`per pair of runs: ${cmp.pairedDifferences.map((x) => fmt(x)).join(', ')}`);
      lines.push(`- ${cmp.label}: **${sign(cmp.value)} ${c.unit}** (${details.join('; ')})${verdict}`);
    } else {
      const how =
        cmp.better === 'lower'
          ? `${times(cmp.ratio)} the baseline's ${cmp.field}${cmp.factor >= 1 ? ` (${times(cmp.factor)} better)` : ''}`
          : times(cmp.ratio);
      lines.push(
        `- ${cmp.label}: **${how}** (per pair of runs: ${cmp.pairedRatios.map((x) => fmt(x)).join(', ')})${verdict}`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

/** Every contender with the medians of all its fields and its runs. */
function contenderTable(c) {
  // Contenders may differ in their fields (and their main one): every field, blank where missing.
  const fields = [...new Set(c.contenders.flatMap((k) => Object.keys(k.median)))];
  const main = c.mainField;
  const ordered = [main, ...fields.filter((f) => f !== main)];
  const cell = (k, f) => (k.median[f] === undefined ? '' : fmt(k.median[f]));
  return table(
    ['contender', ...ordered.map((f) => `${FIELD_NAMES[f] ?? f} (median)`), `runs (${FIELD_NAMES[main] ?? main})`],
    c.contenders.map((k) => [
      k.name,
      ...ordered.map((f) => (f === (k.mainField ?? main) ? `**${cell(k, f)}**` : cell(k, f))),
      k.runs.map((r) => fmt(r[k.mainField ?? main])).join(', '),
    ]),
  );
}

/** The clients case: a table per client library, the package against that client's raw loops. */
function clientTables(c) {
  const runs = (xs) => xs.map((x) => fmt(x)).join(', ');
  // Where the time went (the machine may be shared): this process's CPU time, package; raw loop.
  const median = (name) => c.contenders.find((x) => x.name === name)?.median ?? {};
  const cpu = (kind, client) => {
    const cmp = c.comparisons.find((x) => x.id === `clients-${client}-${kind}`);
    return cmp ? `${fmt(median(cmp.contender).nodeCpuMs)}; ${fmt(median(cmp.baseline).nodeCpuMs)}` : '';
  };
  const parts = [];
  for (const k of c.clients) {
    const apis = k.rawApis;
    parts.push(
      `#### ${k.client} ${k.version ?? ''}`.trimEnd(),
      '',
      `Raw loops: ${apis.join('; ')}.`,
      '',
      table(
        [
          '',
          'redis-file-stream MiB/s (median)',
          'raw loop MiB/s (median)',
          'ratio',
          'Node CPU ms (median): package; raw',
          'runs (MiB/s): package; raw',
        ],
        [
          [
            'write',
            `**${fmt(k.write)}**`,
            `${fmt(k.rawWrite)} (XADD, 16 in flight${apis.length > 1 ? `, ${k.rawWriteApi}` : ''})`,
            `**${times(k.writeRatio)}**`,
            cpu('write', k.client),
            `${runs(k.writeRuns)}; ${runs(k.rawWriteRuns)}`,
          ],
          [
            'read',
            `**${fmt(k.read)}**`,
            `${fmt(k.rawRead)} (XRANGE, ${k.rawReadLoop}${apis.length > 1 ? `, ${k.rawReadApi}` : ''})`,
            `**${times(k.readRatio)}**`,
            cpu('read', k.client),
            `${runs(k.readRuns)}; ${runs(k.rawReadRuns)}`,
          ],
        ],
      ),
      '',
    );
  }
  return parts.join('\n');
}

export function renderMarkdown(output, { intro, resultsFile }) {
  const m = output.machine;
  const rows = summaryRows(output);
  const parts = [
    intro.trimEnd(),
    '',
    MARKER,
    '',
    `## Results of ${output.date}${output.quick ? ' (quick run)' : ''}`,
    '',
    `From [\`${resultsFile}\`](../${resultsFile}) (raw per-run figures, medians, ratios), \`${output.command}\`, ` +
      `${output.durationSeconds} s. Machine: ${m.cpus} x ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, ` +
      `Redis ${m.redis} (${m.redisServer}), ioredis ${m.ioredis}, redis-file-stream ${m.package} at commit ` +
      `\`${(m.commit ?? 'unknown').slice(0, 12)}\`${m.srcDirty ? ' (src/ modified)' : ''}, redis-wstream ${m.redisWstream}, ` +
      `redis-rstream ${m.redisRstream}. Load average ${m.loadavgAtStart.join(' ')} at the start, ` +
      `${(m.loadavgAtEnd ?? []).join(' ')} at the end (the machine is shared: absolute figures are noisy, ratios of ` +
      `alternated runs less so).`,
    '',
    `CRC-32 implementation the package ran with: **${m.crc32 ?? 'unknown (not recorded)'}** ` +
      `(\`@node-rs/crc32\` when the optional dependency loads, else \`zlib\`: it computes every piece's CRC ` +
      `when the package writes, and checks it when the package reads).`,
    '',
    '![redis-file-stream against its baselines](benchmarks.svg)',
    '',
    '### Targets',
    '',
    table(
      ['target', 'measured (medians)', 'result'],
      rows.map((r) => [
        r.target,
        r.measured,
        r.result === 'met' ? 'met' : r.result === 'MISSED' ? '**missed**' : r.result,
      ]),
    ),
    '',
    ...output.cases.map(caseSection),
  ];
  return `${parts.join('\n').trimEnd()}\n`;
}

/** The line that names the run a case merged in from another results file (mergeResults) came from. */
function sourceOf(from) {
  return (
    `This case is from another run: [\`${from.resultsFile}\`](../${from.resultsFile}), \`${from.command}\`, ` +
    `${from.durationSeconds} s, ${from.date}, commit \`${(from.commit ?? 'unknown').slice(0, 12)}\`` +
    `${from.srcDirty ? ' (src/ modified)' : ''}; load average ${(from.loadavgAtStart ?? []).join(' ')} at the start, ` +
    `${(from.loadavgAtEnd ?? []).join(' ')} at the end.`
  );
}

/** The newest results file of a full run in `dir` (`<date>.json`), or undefined. */
export function newestFullResults(dir) {
  const full = readdirSync(dir)
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f))
    .sort();
  return full.length ? join(dir, full[full.length - 1]) : undefined;
}

/**
 * The results files of partial runs (`--only`, `<date>-only-<cases>.json`) in `dir` of `date` or
 * later, oldest first: what a full run of `date` does not hold yet.
 */
export function partialResultsSince(dir, date) {
  return readdirSync(dir)
    .filter((f) => /^\d{4}-\d{2}-\d{2}-only-.+\.json$/.test(f) && !f.endsWith('-quick.json') && f.slice(0, 10) >= date)
    .sort()
    .map((f) => join(dir, f));
}

/**
 * The results of `base` with the cases of a partial run (`--only`) in place of its own (or added
 * after them), each marked with the run it came from, so that a run of a few cases updates the
 * page without losing the others.
 */
export function mergeResults(base, partial, partialFile) {
  const m = partial.machine;
  const from = {
    resultsFile: partialFile,
    command: partial.command,
    date: partial.date,
    durationSeconds: partial.durationSeconds,
    commit: m.commit,
    srcDirty: m.srcDirty,
    loadavgAtStart: m.loadavgAtStart,
    loadavgAtEnd: m.loadavgAtEnd,
  };
  const cases = [...base.cases];
  for (const c of partial.cases) {
    const merged = { ...c, from };
    const at = cases.findIndex((x) => x.id === c.id);
    if (at >= 0) cases[at] = merged;
    else cases.push(merged);
  }
  return { ...base, cases };
}

/**
 * Write docs/benchmarks.md (keeping its hand-written top), docs/benchmarks.svg and, with a latency
 * case, docs/benchmarks-latency.svg.
 */
export function writeDocs(output, { root, resultsFile }) {
  const md = join(root, 'docs', 'benchmarks.md');
  const svg = join(root, 'docs', 'benchmarks.svg');
  let intro = DEFAULT_INTRO;
  if (existsSync(md)) {
    const current = readFileSync(md, 'utf8');
    const at = current.indexOf(MARKER);
    intro = at >= 0 ? current.slice(0, at) : current;
  }
  writeFileSync(svg, renderSvg(output));
  writeFileSync(md, renderMarkdown(output, { intro, resultsFile }));
  const latency = output.cases.find((c) => c.latency && !c.error);
  if (!latency) return [md, svg];
  const latencySvg = join(root, 'docs', LATENCY_SVG);
  writeFileSync(latencySvg, renderLatencySvg(output, latency));
  return [md, svg, latencySvg];
}
