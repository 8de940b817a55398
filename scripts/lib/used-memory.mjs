// Redis's used_memory, for the demo, the benchmarks and the tests that hold the memory guard to
// its limit: read once, or sampled every few milliseconds while a transfer runs. Types:
// used-memory.d.mts.

import { setTimeout as sleep } from 'node:timers/promises';

/** used_memory in the text of `INFO memory`, NaN when it is not there. */
export function parseUsedMemory(info) {
  return Number(/^used_memory:(\d+)/m.exec(String(info))?.[1] ?? Number.NaN);
}

/** Redis's used_memory now, through `client` (ioredis). */
export async function usedMemory(client) {
  const used = parseUsedMemory(await client.info('memory'));
  if (Number.isNaN(used)) throw new Error('INFO memory did not report used_memory');
  return used;
}

/**
 * Read used_memory every `everyMs` ms on `client` (a connection of its own, so that the readings
 * do not wait behind a transfer) until `stop()`, which resolves to the peak and the number of
 * samples. Time is the subject of this loop: it samples, it stands in for nothing.
 */
export function sampleUsedMemory(client, everyMs = 2) {
  let peak = 0;
  let samples = 0;
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      peak = Math.max(peak, await usedMemory(client));
      samples++;
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      sampling = false;
      await loop;
      return { peak, samples };
    },
  };
}
