// What the demo prints: the log directory, the receivers' table, the totals with Redis's memory
// against the sender's limit, the check of every receiver against the direct computation, and the
// per-day summary they all agree on.

import { availableParallelism } from 'node:os';
import { compareAggregates, mergeAggregate, newAggregate } from './aggregate.mjs';
import { DemoError } from './lifecycle.mjs';
import { SAMPLE_MS } from './redis.mjs';

const MiB = 1024 * 1024;
/**
 * How far used_memory may exceed maxRedisMemory (docs/distribution.md): the one chunk on its way
 * into Redis, as Redis stores it (sendFiles' default chunk of 256 KiB, rounded up by jemalloc by a
 * quarter at most, and under 1 KiB of the stream entry's own).
 */
const CHUNK = 256 * 1024;
const GUARD_ALLOWANCE = CHUNK + CHUNK / 4 + 1024;
const int = (n) => n.toLocaleString('en-US');
export const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;
const pct = (part, whole) => `${((100 * part) / whole).toFixed(1)}%`;

export function sizeOf(bytes) {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return mib(bytes);
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function table(headers, rows, right) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const cell = (c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]));
  const line = (cells) => `  ${cells.map(cell).join('  ')}`.trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function printLogDirectory(dir, files, seconds) {
  console.log(`demo: sender's log directory ${dir} (generated in ${seconds.toFixed(1)} s, not timed below)`);
  console.log(
    table(
      ['file', 'size', 'raw CSV', 'rows', ''],
      files.map((f) => [f.name, sizeOf(f.size), sizeOf(f.rawBytes), int(f.rows), f.note]),
      [false, true, true, true, false],
    ),
  );
}

/**
 * The receivers' table, the totals, and Redis's used_memory as `sampler` saw it against
 * `maxRedisMemory`. Times count from `senderStart`.
 */
export function printRun({ receivers, files, senderStart, sampler, maxRedisMemory, drill }) {
  const endAt = Math.max(...receivers.map((r) => r.doneAt));
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  console.log(
    "\nreceivers (times from the sender's start; " +
      "MiB/s = stored bytes received / time from the sender's start to the receiver's end):",
  );
  console.log(
    table(
      ['receiver', 'files', 'rows', 'stored', 'MiB/s', 'first row', 'done', ...(drill ? ['restarts'] : [])],
      receivers.map((r) => {
        const results = [...r.files.values()];
        const stored = results.reduce((n, f) => n + f.storedBytes, 0);
        const seconds = (r.doneAt - senderStart) / 1000;
        return [
          r.consumer,
          String(results.length),
          int(results.reduce((n, f) => n + f.agg.rows, 0)),
          mib(stored),
          (stored / MiB / seconds).toFixed(1),
          r.firstRowAt === undefined ? '-' : `${Math.max(0, Math.round(r.firstRowAt - senderStart))} ms`,
          `${seconds.toFixed(2)} s`,
          ...(drill ? [String(r.restarts)] : []),
        ];
      }),
      [false, true, true, true, true, true, true, true],
    ),
  );
  const delivered = receivers.reduce((n, r) => n + [...r.files.values()].reduce((m, f) => m + f.storedBytes, 0), 0);
  const allSeconds = (endAt - senderStart) / 1000;
  console.log(
    `total: ${files.length} files, ${sizeOf(totalBytes)} (${int(totalBytes)} bytes) sent, ` +
      `${receivers.length} receivers, ${sizeOf(delivered)} received in ${allSeconds.toFixed(2)} s = ` +
      `${(delivered / MiB / allSeconds).toFixed(1)} MiB/s aggregate`,
  );
  const over = sampler.peak - maxRedisMemory;
  const held =
    over <= 0
      ? `the limit held (${mib(-over)} under it)`
      : over <= GUARD_ALLOWANCE
        ? `the limit held (${mib(over)} over it, within the ${mib(GUARD_ALLOWANCE)} allowed for the chunk on its way ` +
          'into Redis)'
        : `the limit did NOT hold: ${mib(over)} over it (over the limit in ${sampler.over} samples)`;
  const waited = sampler.clientList
    ? sampler.waiting > 0
      ? `the sender's memory guard waited for freed memory in ${sampler.waiting} samples ` +
        `(about ${((sampler.waiting * allSeconds) / sampler.samples).toFixed(1)} s)`
      : "the sender's memory guard never waited for freed memory"
    : '';
  console.log(
    `Redis used_memory (${int(sampler.samples)} samples, one every ${SAMPLE_MS} ms): ` +
      `peak ${mib(sampler.peak)} vs maxRedisMemory ${mib(maxRedisMemory)}: ${held}` +
      (waited ? `; ${waited}` : ''),
  );
  if (receivers.length + 1 > availableParallelism()) {
    console.log(
      `  ${receivers.length} receiver processes gunzip and parse CSV on ${availableParallelism()} CPUs at once: ` +
        'csv-parse bounds the receivers, and their CPU use slows the sender too',
    );
  }
}

/**
 * The check: every receiver, every file, against the direct computation. Prints the verdict (and
 * the per-day summary); throws when a receiver does not match.
 */
export function checkReceivers(receivers, files, killReceiver) {
  const drill = killReceiver !== undefined;
  const expectedAll = files.reduce((agg, f) => mergeAggregate(agg, f.expected), newAggregate());
  let mismatches = 0;
  for (const r of receivers) {
    const byName = new Map([...r.files.values()].map((f) => [f.name, f]));
    let why;
    for (const f of files) {
      const got = byName.get(f.name);
      why = !got
        ? `${f.name} was not received`
        : got.storedBytes !== f.size
          ? `${f.name}: received ${got.storedBytes} stored bytes, the file has ${f.size}`
          : got.csvBytes !== f.rawBytes
            ? `${f.name}: parsed ${got.csvBytes} CSV bytes, the file has ${f.rawBytes}`
            : compareAggregates(f.expected, got.agg);
      if (why) break;
    }
    if (!why && r.files.size !== files.length) why = `${r.files.size} files received, ${files.length} sent`;
    if (!why) {
      const got = [...r.files.values()].reduce((agg, f) => mergeAggregate(agg, f.agg), newAggregate());
      why = compareAggregates(expectedAll, got);
    }
    if (why) {
      mismatches++;
      console.error(`demo: receiver ${r.index} does NOT match the direct computation: ${why}`);
    }
  }
  if (drill) {
    // A restarted receiver resumes at the first file it had not acknowledged, from its beginning
    // (its offset would say otherwise: Redis trims only what every receiver had consumed).
    const r = receivers[killReceiver - 1];
    const again = r.proc.received;
    if (again[0] !== r.killedIn) {
      mismatches++;
      console.error(
        `demo: receiver ${r.index} was killed in ${r.killedIn}, ` +
          `but its new process started with ${again[0] ?? 'no file'}`,
      );
    } else {
      console.log(
        `demo: receiver ${r.index}'s new process resumed at ${r.killedIn} from byte ${r.proc.offsets[0]} ` +
          `and received ${again.join(', ')}`,
      );
    }
  }
  if (mismatches === 0) printDays(files, expectedAll);
  if (mismatches > 0) {
    throw new DemoError(`${mismatches} of ${receivers.length} receivers do not match the direct computation`);
  }
  console.log(
    `\ndemo: all ${receivers.length} receivers match the direct computation` +
      (drill ? ` (receiver ${killReceiver} was killed and restarted)` : ''),
  );
}

function printDays(files, agg) {
  console.log('\nper day (each receiver aggregated requests and bytes served per day and country; all of them agree):');
  console.log(
    table(
      ['day', 'requests', 'bytes served', 'countries', 'top countries by requests'],
      files.map((f) => {
        const byRequests = (a, b) => b[1].requests - a[1].requests;
        const countries = [...(agg.days.get(f.day) ?? new Map()).entries()].sort(byRequests);
        const requests = countries.reduce((n, [, c]) => n + c.requests, 0);
        const served = countries.reduce((n, [, c]) => n + c.bytes, 0);
        return [
          `${f.day} ${f.weekday}`,
          int(requests),
          sizeOf(served),
          String(countries.length),
          countries
            .slice(0, 3)
            .map(([country, c]) => `${country} ${pct(c.requests, requests)}`)
            .join(', '),
        ];
      }),
      [false, true, true, true, false],
    ),
  );
}
