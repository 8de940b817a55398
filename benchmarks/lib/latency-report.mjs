// The latency case in the report: its section of docs/benchmarks.md (tables by RTT) and its own
// chart, docs/benchmarks-latency.svg (absolute figures by RTT, the package beside the raw loops).

import { esc, fmt, table, times } from './format.mjs';

export const LATENCY_SVG = 'benchmarks-latency.svg';

const PKG = 'redis-file-stream';
const CHANNEL = 'redis-file-stream, channel';
const SAME_WRITE = 'raw XADD, 16 in flight';
const SAME_READ = 'raw XRANGE, next batch ahead';

/** The contender of section `section` at `rtt` labelled `label`, or undefined. */
function find(c, rtt, section, label) {
  return c.contenders.find((k) => k.rttMs === rtt && k.section === section && k.label === label);
}

/** The labels of a section's contenders, in the order they were run. */
function labelsOf(c, section) {
  return [...new Set(c.contenders.filter((k) => k.section === section).map((k) => k.label))];
}

const med = (k, field) => k?.median?.[field];
/** A count as it is ("4"), anything else as fmt has it. */
const num = (x) => (Number.isInteger(x) ? String(x) : fmt(x));
const cmpOf = (c, id) => c.comparisons.find((x) => x.id === id);
const ratioCell = (cmp) => (cmp ? times(cmp.ratio) : '');

function throughputTable(c, section, bestKey) {
  const labels = labelsOf(c, section);
  const raw = labels.filter((l) => l !== PKG);
  const head = ['RTT', `**${PKG}**`, ...raw, 'package / fixed window', 'package / best raw'];
  const rows = c.latency.rtts.map((at) => {
    const rtt = at.rttMs;
    const best = at[bestKey];
    const cells = raw.map((l) => {
      const v = fmt(med(find(c, rtt, section, l), 'mibps'));
      return l === best ? `**${v}** (best)` : v;
    });
    return [
      `${rtt} ms`,
      `**${fmt(med(find(c, rtt, section, PKG), 'mibps'))}**`,
      ...cells,
      ratioCell(cmpOf(c, `latency-${rtt}-${section}-vs-same-window`)),
      ratioCell(cmpOf(c, `latency-${rtt}-${section}-vs-best`)),
    ];
  });
  return table(head, rows);
}

export function latencySection(c) {
  const lines = [];
  const rtts = c.latency.rtts;
  lines.push(`![the package and the raw loops through the delaying proxy, by RTT](${LATENCY_SVG})`, '');
  lines.push(
    'Calibration (PING through the proxy, ms; "after": once every measurement at that RTT was done):',
    '',
    table(
      ['RTT', 'one-way delay', 'PING without delay, p50', 'PING p50 (p10-p90)', 'PING p50 after', 'load average'],
      rtts.map((at) => [
        `${at.rttMs} ms`,
        fmt(at.oneWayMs, 3),
        fmt(at.pingWithoutDelay.p50, 3),
        `**${fmt(at.ping.p50, 3)}** (${fmt(at.ping.p10, 3)}-${fmt(at.ping.p90, 3)})`,
        fmt(at.pingAfter.p50, 3),
        `${at.loadavgAtStart.join(' ')} -> ${at.loadavgAtEnd.join(' ')}`,
      ]),
    ),
    '',
  );
  lines.push('Write, MiB/s (medians):', '', throughputTable(c, 'write', 'bestWrite'), '');
  lines.push('Read, MiB/s (medians):', '', throughputTable(c, 'read', 'bestRead'), '');
  lines.push(
    'Follow latency, write to delivery, ms:',
    '',
    table(
      ['RTT', 'package p50', 'package p99', 'raw XREAD BLOCK p50', 'raw p99', 'package / raw, p50', 'p99'],
      rtts.map((at) => {
        const pkg = find(c, at.rttMs, 'follow', PKG);
        const raw = find(c, at.rttMs, 'follow', 'raw XREAD BLOCK');
        return [
          `${at.rttMs} ms`,
          `**${fmt(med(pkg, 'p50'))}**`,
          fmt(med(pkg, 'p99')),
          fmt(med(raw, 'p50')),
          fmt(med(raw, 'p99')),
          ratioCell(cmpOf(c, `latency-${at.rttMs}-follow-p50`)),
          ratioCell(cmpOf(c, `latency-${at.rttMs}-follow-p99`)),
        ];
      }),
    ),
    '',
  );
  const trips = (k) => {
    if (!k) return '';
    return `**${num(med(k, 'roundTrips'))}** (${fmt(med(k, 'ms'))} ms = ${fmt(med(k, 'rtts'))} RTT)`;
  };
  lines.push(
    'A 1-byte file: request bursts the proxy saw (medians), and the time, also in calibrated RTTs:',
    '',
    table(
      ['RTT', 'write, package', 'write, raw XADD', 'read, package', 'read, raw XRANGE'],
      rtts.map((at) => [
        `${at.rttMs} ms`,
        trips(find(c, at.rttMs, '1-byte write', PKG)),
        trips(find(c, at.rttMs, '1-byte write', 'raw XADD')),
        trips(find(c, at.rttMs, '1-byte read', PKG)),
        trips(find(c, at.rttMs, '1-byte read', 'raw XRANGE')),
      ]),
    ),
    '',
  );
  const small = labelsOf(c, '1 KiB files');
  lines.push(
    '1 KiB files per second (medians):',
    '',
    table(
      ['RTT', ...small, 'one after another / raw pipelined', 'channel / raw pipelined'],
      rtts.map((at) => [
        `${at.rttMs} ms`,
        ...small.map((l) => fmt(med(find(c, at.rttMs, '1 KiB files', l), 'filesPerSecond'))),
        ratioCell(cmpOf(c, `latency-${at.rttMs}-small-files-write`)),
        ratioCell(cmpOf(c, `latency-${at.rttMs}-small-files-channel`)),
      ]),
    ),
    '',
  );
  for (const cmp of c.comparisons) {
    const verdict = cmp.target ? ` — target ${cmp.target.text}: **${cmp.met ? 'met' : 'missed'}**` : '';
    if (cmp.kind === 'value') {
      lines.push(`- ${cmp.label}: **${num(cmp.value)} ${cmp.unit}** (runs: ${cmp.runs.map(num).join(', ')})${verdict}`);
    } else {
      const pair = `${fmt(cmp.contenderMedian)} vs ${fmt(cmp.baselineMedian)} ${cmp.unit}`;
      const paired = cmp.pairedRatios.map((x) => fmt(x)).join(', ');
      lines.push(`- ${cmp.label}: **${times(cmp.ratio)}** (${pair}; per pair of runs: ${paired})${verdict}`);
    }
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The chart: panels of horizontal bars, one group per RTT.

const COLORS = { pkg: '#0969da', same: '#afb8c1', best: '#57606a' };
const BOLD = 'font-weight="600" fill="#1f2328"';
const GREY = 'fill="#59636e"';

export function renderLatencySvg(output, c) {
  const rtts = c.latency.rtts;
  const bar = (rtt, section, label, field, color, note) => {
    const k = find(c, rtt, section, label);
    return k ? { label: note ?? label, value: med(k, field), color } : undefined;
  };
  const panels = [
    {
      title: 'Write, MiB/s (more is better)',
      groups: rtts.map((at) => ({
        rtt: at.rttMs,
        bars: [
          bar(at.rttMs, 'write', PKG, 'mibps', COLORS.pkg),
          bar(at.rttMs, 'write', SAME_WRITE, 'mibps', COLORS.same, `${SAME_WRITE} (fixed window)`),
          bar(at.rttMs, 'write', at.bestWrite, 'mibps', COLORS.best, `best raw: ${at.bestWrite}`),
        ],
      })),
    },
    {
      title: 'Read, MiB/s (more is better)',
      groups: rtts.map((at) => ({
        rtt: at.rttMs,
        bars: [
          bar(at.rttMs, 'read', PKG, 'mibps', COLORS.pkg),
          bar(at.rttMs, 'read', SAME_READ, 'mibps', COLORS.same, `${SAME_READ} (fixed window)`),
          bar(at.rttMs, 'read', at.bestRead, 'mibps', COLORS.best, `best raw: ${at.bestRead}`),
        ],
      })),
    },
    {
      title: 'Follow latency p50, ms (less is better)',
      groups: rtts.map((at) => ({
        rtt: at.rttMs,
        bars: [
          bar(at.rttMs, 'follow', PKG, 'p50', COLORS.pkg, `${PKG}, flush() per write`),
          bar(at.rttMs, 'follow', 'raw XREAD BLOCK', 'p50', COLORS.best),
        ],
      })),
    },
    {
      title: '1 KiB files per second (more is better; log scale)',
      log: true,
      groups: rtts.map((at) => ({
        rtt: at.rttMs,
        bars: [
          bar(at.rttMs, '1 KiB files', PKG, 'filesPerSecond', COLORS.pkg, `${PKG}, one after another`),
          bar(at.rttMs, '1 KiB files', CHANNEL, 'filesPerSecond', COLORS.pkg, `${CHANNEL} (send + receive)`),
          bar(at.rttMs, '1 KiB files', 'raw XADD, pipelined', 'filesPerSecond', COLORS.best),
        ],
      })),
    },
  ];
  for (const p of panels) for (const g of p.groups) g.bars = g.bars.filter((b) => b && Number.isFinite(b.value));

  const W = 900;
  const charW = 7;
  const rowH = 18;
  const labelW = Math.max(...panels.flatMap((p) => p.groups.flatMap((g) => g.bars.map((b) => b.label.length)))) * charW;
  const left = 16 + 60 + labelW + 10;
  const plotW = W - left - 70;
  const out = [];
  let y = 96;
  for (const p of panels) {
    const values = p.groups.flatMap((g) => g.bars.map((b) => b.value));
    const max = Math.max(...values, 1e-9);
    const lo = p.log ? 10 ** Math.floor(Math.log10(Math.max(1e-9, Math.min(...values)))) : 0;
    const hi = p.log ? 10 ** Math.ceil(Math.log10(max)) : niceCeil(max);
    const x = (v) => left + (p.log ? (Math.log10(v / lo) / Math.log10(hi / lo)) * plotW : (v / hi) * plotW);
    out.push(text(16, y, p.title, BOLD));
    y += 10;
    const top = y;
    const grid = out.length; // the scale goes here, under the bars, once their height is known
    for (const g of p.groups) {
      out.push(text(16, y + rowH / 2 + 4, `RTT ${g.rtt} ms`, BOLD));
      for (const b of g.bars) {
        const baseline = y + rowH / 2 + 4;
        out.push(text(left - 8, baseline, b.label, 'text-anchor="end" fill="#1f2328"'));
        const w = Math.max(1.5, x(b.value) - left);
        const tip = `<title>${esc(`RTT ${g.rtt} ms, ${b.label}: ${fmt(b.value)}`)}</title>`;
        const box = `x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}"`;
        out.push(`<rect ${box} fill="${b.color}" rx="2">${tip}</rect>`);
        out.push(text((left + w + 5).toFixed(1), baseline, fmt(b.value), 'fill="#1f2328"'));
        y += rowH;
      }
      y += 6;
    }
    // Scale: 0, half, max (linear) or the powers of ten (log).
    const ticks = p.log ? powersOfTen(lo, hi) : [0, hi / 4, hi / 2, (3 * hi) / 4, hi];
    const scale = ticks.flatMap((t) => {
      const tx = x(t).toFixed(1);
      return [
        `<line x1="${tx}" y1="${top}" x2="${tx}" y2="${y - 4}" stroke="#d1d9e0" stroke-width="1"/>`,
        text(tx, y + 8, Number(t.toPrecision(3)), 'text-anchor="middle" fill="#59636e" font-size="11"'),
      ];
    });
    out.splice(grid, 0, ...scale);
    y += 36;
  }
  const trips = rtts
    .map((at) => {
      const w = med(find(c, at.rttMs, '1-byte write', PKG), 'roundTrips');
      const r = med(find(c, at.rttMs, '1-byte read', PKG), 'roundTrips');
      return `RTT ${at.rttMs} ms: write ${num(w)}, read ${num(r)}`;
    })
    .join('; ');
  out.push(text(16, y - 10, `Round trips of a 1-byte file (raw XADD / XRANGE: 1) — ${trips}`, 'fill="#1f2328"'));
  const H = y + 30;
  const m = output.machine;
  const date = `${c.from?.date ?? output.date}${output.quick ? ' (quick run)' : ''}`;
  const head = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    text(16, 26, `redis-file-stream ${m.package} through a delaying proxy — ${date}`, `font-size="16" ${BOLD}`),
    text(16, 46, 'Medians. The PING through the proxy is calibrated to the RTT.', GREY),
    text(16, 64, 'Blue: the package; grey: raw ioredis at the fixed window; dark: the best raw loop of the run.', GREY),
  ];
  const commit = (c.from?.commit ?? m.commit ?? '?').slice(0, 10);
  const machine = `${m.cpus} x ${m.cpuModel}, Node ${m.node}, Redis ${m.redis}, ioredis ${m.ioredis}, commit ${commit}`;
  const foot = text(16, H - 12, machine, 'fill="#59636e" font-size="11"');
  return `${[...head, ...out, foot, '</svg>'].join('\n')}\n`;
}

/** A line of SVG text at (x, y), escaped. */
function text(x, y, content, attributes) {
  return `<text x="${x}" y="${y}" ${attributes}>${esc(content)}</text>`;
}

/** A round number (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8 times a power of ten) at or above x. */
function niceCeil(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function powersOfTen(lo, hi) {
  const out = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) out.push(t);
  return out;
}
