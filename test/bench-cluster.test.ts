/**
 * Smoke test of the scaling benchmark (benchmarks/cluster.mjs): a quick run on servers of its own
 * (1 node and a 3-primary cluster) writes a results JSON with both topologies, positive figures
 * and every file counted on some primary. Timings are not checked: speed is measured in
 * benchmarks/, never asserted here.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
/** A quick run takes about 6 s on an idle 2-core machine; others' tests may slow it down a lot. */
const RUN_TIMEOUT_MS = 90_000;

interface Topology {
  name: string;
  distribution: Record<string, number>;
  median: Record<string, number>;
  runs: unknown[];
}

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'redis-file-stream-bench-cluster-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

it('bench:cluster --quick measures 1 node and 3 shards', { timeout: RUN_TIMEOUT_MS + 5_000 }, async () => {
  const out = join(tmp, 'cluster.json');
  await new Promise<void>((resolve, reject) => {
    const args = ['benchmarks/cluster.mjs', '--quick', '--no-replicas', '--files', '6', '--size', '1', '--out', out];
    execFile(
      process.execPath,
      args,
      { cwd: root, timeout: RUN_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`node ${args.join(' ')} failed (${error.code ?? error.signal})\n${stdout}\n${stderr}`));
        else resolve();
      },
    );
  });
  const output = JSON.parse(await readFile(out, 'utf8')) as { setup: { files: number }; topologies: Topology[] };
  expect(output.topologies.map((t) => t.name)).toEqual(['1 node', '3 shards']);
  for (const t of output.topologies) {
    expect(t.runs).toHaveLength(1);
    for (const field of ['writeMiBps', 'readMiBps', 'writeNodeCpuPct', 'readNodeCpuPct']) {
      expect(t.median[field], `${t.name} ${field}`).toBeGreaterThan(0);
    }
    for (const field of ['writeRedisCpuPct', 'readRedisCpuPct']) {
      expect(t.median[field], `${t.name} ${field}`).toBeGreaterThanOrEqual(0);
    }
    const counts = Object.values(t.distribution);
    expect(counts).toHaveLength(t.name === '1 node' ? 1 : 3);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(output.setup.files);
  }
});
