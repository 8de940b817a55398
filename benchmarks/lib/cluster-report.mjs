// Turns a results JSON of benchmarks/cluster.mjs into the stdout summary and the markdown page
// docs/scaling-benchmark.md. Everything on the page, the reading included, is computed from the
// JSON, so that the page always matches the figures it comes from.

const fmt = (x) => {
  if (typeof x !== 'number' || !Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  return x.toFixed(2);
};
const pct = (x) => `${typeof x === 'number' && Number.isFinite(x) ? Math.round(x) : x} %`;
const times = (x) => `${fmt(x)}x`;
const mib = (bytes) => `${bytes / 1048576} MiB`;

const PHASES = ['write', 'read'];

function comparison(output, topo, phase) {
  return output.comparisons.find((c) => c.contender === topo && c.field === `${phase}MiBps`);
}

/** "6 / 5 / 5" files per primary, in the order of the servers. */
function spread(t) {
  if (!t.distribution) return '-';
  return Object.values(t.distribution).join(' / ');
}

/** A plain-text table with columns padded to their widest cell. */
function textTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => String(cell).padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The short table printed at the end of a run. */
export function formatClusterSummary(output) {
  const s = output.setup;
  const head = [
    'topology',
    'write MiB/s',
    'read MiB/s',
    'write CPU % node/redis/other',
    'read CPU % node/redis/other',
    'files per primary',
  ];
  const cpu = (m, phase) =>
    [m[`${phase}NodeCpuPct`], m[`${phase}RedisCpuPct`], m[`${phase}OtherCpuPct`]]
      .map((x) => (x === undefined ? '?' : Math.round(x)))
      .join(' / ');
  const rows = [head];
  for (const t of output.topologies) {
    rows.push([
      t.name,
      fmt(t.median.writeMiBps),
      fmt(t.median.readMiBps),
      cpu(t.median, 'write'),
      cpu(t.median, 'read'),
      spread(t),
    ]);
  }
  for (const t of output.topologies.slice(1)) {
    const w = comparison(output, t.name, 'write');
    const r = comparison(output, t.name, 'read');
    rows.push([`${t.name} / 1 node`, times(w.ratio), times(r.ratio), '', '', '']);
  }
  const title =
    `summary${output.quick ? ' (quick: smoke check, small sizes, 1 run each; timings not meaningful)' : ''}: ` +
    `${s.files} files x ${mib(s.fileSizeBytes)} at once, medians of ${s.reps} run(s); CPU in % of one core ` +
    `(the machine has ${output.machine.cpus} cores = ${output.machine.cpus * 100} %)`;
  return `${title}\n${textTable(rows)}`;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function table(head, rows) {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function verdict(ratio) {
  if (ratio >= 1.1) return `${times(ratio)}, faster`;
  if (ratio <= 0.9) return `${times(ratio)}, slower`;
  return `${times(ratio)}, about the same`;
}

function range(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length > 1 ? `${fmt(s[0])} to ${fmt(s[s.length - 1])}` : fmt(s[0]);
}

/** The reading: plain sentences computed from the figures. */
function reading(output) {
  const cores = output.machine.cpus;
  const base = output.topologies[0];
  const lines = [];
  for (const t of output.topologies.slice(1)) {
    const parts = PHASES.map((phase) => {
      const c = comparison(output, t.name, phase);
      return `${phase} ${fmt(c.contenderMedian)} against ${fmt(c.baselineMedian)} MiB/s (${verdict(c.ratio)}; per pair of runs ${range(c.pairedRatios)})`;
    });
    lines.push(`- **${t.name} against 1 node:** ${parts.join('; ')}.`);
  }

  // Where the CPU went, for the 1 node and 3 shards cases.
  const sharded = output.topologies.find((t) => t.name === '3 shards');
  const both = sharded ? [base, sharded] : [base];
  // "43 % → 36 %": 1 node, then 3 shards.
  const each = (f) => both.map((t) => f(t.median)).join(' → ');
  for (const phase of PHASES) {
    const b = base.median;
    const P = (field) => (m) => pct(m[`${phase}${field}`]);
    const ms = (field) => (m) => `${fmt(m[`${phase}${field}`])} ms`;
    let text =
      `- **CPU while ${phase === 'write' ? 'writing' : 'reading'}${sharded ? ' (1 node → 3 shards)' : ''}:** Node and the ` +
      `redis-servers together used ${each((m) => pct(m[`${phase}NodeCpuPct`] + m[`${phase}RedisCpuPct`]))} of one core ` +
      `(Node ${each(P('NodeCpuPct'))}, Redis ${each(P('RedisCpuPct'))})`;
    if (b[`${phase}MachineBusyPct`] !== undefined) {
      text += `; other processes ${each(P('OtherCpuPct'))} of one core; the machine was ${each(P('MachineBusyPct'))} busy`;
    }
    if (b[`${phase}NodeCpuMsPerMiB`] !== undefined) {
      text += `. CPU per MiB ${phase === 'write' ? 'written' : 'read'}: Node ${each(ms('NodeCpuMsPerMiB'))}, Redis ${each(ms('RedisCpuMsPerMiB'))}`;
    }
    lines.push(`${text}.`);
  }

  // What limits the figures on this machine.
  const all = output.topologies.flatMap((t) => PHASES.map((p) => ({ t, p, m: t.median })));
  const nodePeak = Math.max(...all.map(({ p, m }) => m[`${p}NodeCpuPct`]));
  const busyLow = Math.min(...all.map(({ p, m }) => m[`${p}MachineBusyPct`] ?? 0));
  const otherLow = Math.min(...all.map(({ p, m }) => m[`${p}OtherCpuPct`] ?? 0));
  const oursHigh = Math.max(...all.map(({ p, m }) => m[`${p}NodeCpuPct`] + m[`${p}RedisCpuPct`]));
  const limits = [];
  if (busyLow >= 90) {
    let text = `the machine was ${busyLow >= 99.5 ? 'fully' : `at least ${pct(busyLow)}`} busy in every phase: Node and the redis-servers compete for the same ${cores} cores`;
    if (otherLow >= 25) {
      text +=
        `, and other processes took at least ${pct(otherLow)} of one core throughout, so Node and Redis had what was ` +
        `left (at most ${pct(oursHigh)} of one core together, whatever the topology). Three shards could only share ` +
        `that CPU time, not add to it; a topology that needs less CPU per MiB moves more MiB/s in it`;
    } else {
      text += ', so a second and third shard find little idle CPU to use';
    }
    limits.push(text);
  }
  if (nodePeak >= 80) {
    limits.push(
      `the Node process, one JavaScript thread that runs every stream, the CRC-32 checksums and the ioredis ` +
        `parsing, reached ${pct(nodePeak)} of one core: a single client process is close to its own limit, and ` +
        `more shards cannot raise it`,
    );
  }
  if (limits.length > 0) {
    lines.push(`- **What limits these figures:** ${limits.join('; ')}.`);
  } else {
    lines.push(
      `- **What limits these figures:** neither the Node process (at most ${pct(nodePeak)} of one core) nor the ` +
        `machine (at least ${pct(busyLow)} busy) was saturated in every phase.`,
    );
  }
  lines.push(
    `- **What it does not show:** sharding adds capacity when the shards have CPUs of their own and the clients ` +
      `run in several processes or machines; on ${cores} shared cores this benchmark measures the spread of the ` +
      `files and the CPU cost of a \`Cluster\` client and of the shards, not that capacity.`,
  );

  const replicated = output.topologies.find((t) => t.name === '3 shards + 3 replicas');
  if (replicated) {
    const replicaCpu = replicated.serverCpuMedian.write
      .filter((s) => s.role === 'replica')
      .reduce((a, s) => a + s.cpuPct, 0);
    const c = comparison(output, replicated.name, 'write');
    const vsSharded = sharded
      ? ` and ${times(c.contenderMedian / sharded.median.writeMiBps)} the figure without replicas`
      : '';
    const perMiB = replicated.median.writeRedisCpuMsPerMiB;
    const perMiBText =
      perMiB === undefined
        ? ''
        : `; all redis-servers together spent ${fmt(perMiB)} ms of CPU per MiB written` +
          `${sharded ? ` (${fmt(sharded.median.writeRedisCpuMsPerMiB)} ms without replicas)` : ''}`;
    lines.push(
      `- **Replicas:** with a replica per primary, the replicas used ${pct(replicaCpu)} of one core together while the ` +
        `files were written (they apply the same writes, and the primaries also send them)${perMiBText}, on the same cores. ` +
        `The write figure was ${times(c.ratio)} the 1 node figure${vsSharded}. Reads go to the primaries (ioredis's default).`,
    );
  }

  const dist = output.topologies.filter((t) => t !== base && t.distribution);
  if (dist.length > 0) {
    const t = dist[0];
    lines.push(
      `- **Spread of the files:** the ${output.setup.files} file names hash to the three primaries as ${spread(t)} ` +
        `(counted on the primaries after the writes${t.distributionStable ? ', the same in every run' : ''}); ` +
        `with few files the spread is uneven, and the primary with the most files does the most work.`,
    );
  }
  return lines;
}

export function renderClusterMarkdown(output, { resultsFile }) {
  const m = output.machine;
  const s = output.setup;
  const cores = m.cpus;
  const topoRows = output.topologies.map((t) => {
    const ratio = (phase) => (t === output.topologies[0] ? '1x' : times(comparison(output, t.name, phase).ratio));
    return [
      t.name,
      `**${fmt(t.median.writeMiBps)}**`,
      ratio('write'),
      `**${fmt(t.median.readMiBps)}**`,
      ratio('read'),
      t.name === '1 node' ? `${s.files}` : spread(t),
    ];
  });
  const cpuRows = [];
  for (const t of output.topologies) {
    for (const phase of PHASES) {
      const md = t.median;
      const perServer = t.serverCpuMedian[phase]
        .map((x) => `${x.role === 'replica' ? 'r' : ''}${Math.round(x.cpuPct)}`)
        .join(' / ');
      cpuRows.push([
        t.name,
        phase,
        pct(md[`${phase}NodeCpuPct`]),
        pct(md[`${phase}RedisCpuPct`]),
        t.servers.length > 1 ? perServer : '-',
        pct((md[`${phase}NodeCpuPct`] + md[`${phase}RedisCpuPct`]) / cores),
        md[`${phase}NodeCpuMsPerMiB`] === undefined
          ? '?'
          : `${fmt(md[`${phase}NodeCpuMsPerMiB`])} / ${fmt(md[`${phase}RedisCpuMsPerMiB`])}`,
        md[`${phase}MachineBusyPct`] === undefined ? '?' : pct(md[`${phase}MachineBusyPct`]),
        md[`${phase}OtherCpuPct`] === undefined ? '?' : pct(md[`${phase}OtherCpuPct`]),
      ]);
    }
  }
  const runRows = output.topologies.map((t) => [
    t.name,
    t.runs.map((r) => fmt(r.writeMiBps)).join(', '),
    t.runs.map((r) => fmt(r.readMiBps)).join(', '),
  ]);

  const parts = [
    '# Scaling benchmark: many files over shards',
    '',
    `<!-- Generated by benchmarks/cluster.mjs from ${resultsFile}: run \`npm run bench:cluster\` to refresh it (or \`node benchmarks/cluster.mjs --render ${resultsFile}\` to rewrite it from the JSON). Do not edit by hand. -->`,
    '',
    `\`npm run bench:cluster\` writes ${s.files} files of ${mib(s.fileSizeBytes)} at once with \`createRedisWriteStream\`, then reads ` +
      `them all at once with \`createRedisReadStream\` (default options, checksum on), through one ioredis client in one ` +
      `Node process, on servers it starts on loopback. Each file's keys share a hash tag, so on a cluster the files ` +
      `spread over the primaries. The topologies take turns (the order rotated every run)${s.warmup ? ' after one untimed warm-up run each' : ''}; ` +
      `figures are medians of ${s.reps} run${s.reps === 1 ? '' : 's'}, aggregate MiB/s = all bytes / wall time of the phase.`,
    '',
    `Results of ${output.date}${output.quick ? ' (quick run: small sizes, timings not meaningful)' : ''}, from ` +
      `[\`${resultsFile}\`](../${resultsFile}), \`${output.command}\`, ${output.durationSeconds} s. Machine: ${cores} x ${m.cpuModel}, ` +
      `${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, Redis ${m.redis}, ioredis ${m.ioredis}, redis-file-stream ${m.package} at commit ` +
      `\`${(m.commit ?? 'unknown').slice(0, 12)}\`${m.srcDirty ? ' (src/ modified)' : ''}. Load average ${m.loadavgAtStart.join(' ')} at the ` +
      `start, ${(m.loadavgAtEnd ?? []).join(' ')} at the end: the machine is shared, so absolute figures are noisy; ratios of runs ` +
      `taken in turn less so.`,
    '',
    table(['topology', 'write MiB/s', 'write / 1 node', 'read MiB/s', 'read / 1 node', 'files per primary'], topoRows),
    '',
    `CPU use, medians, in % of one core (the machine has ${cores} cores: ${cores * 100} %), except the columns in % of the ` +
      'whole machine. Per redis-server: primaries in the order of the files-per-primary column, then the replicas (r). ' +
      'CPU ms per MiB: CPU time spent per MiB moved, which does not depend on the share of the CPUs the run got.',
    '',
    table(
      [
        'topology',
        'phase',
        'Node process',
        'redis-servers (sum)',
        'per redis-server',
        'Node + Redis (% of machine)',
        'CPU ms per MiB (Node / Redis)',
        'machine busy (% of machine)',
        'other processes',
      ],
      cpuRows,
    ),
    '',
    '## Reading',
    '',
    ...reading(output),
    '',
    '## Runs',
    '',
    table(['topology', 'write MiB/s per run', 'read MiB/s per run'], runRows),
    '',
    `How the CPU figures are taken: ${s.cpu}.`,
  ];
  return `${parts.join('\n').trimEnd()}\n`;
}
