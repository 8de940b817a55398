/**
 * The one way tests wait for something another party does: check until it holds, within a bound.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolve once `check` returns true (or a truthy value, which is returned), polling every `every`
 * ms; reject with `what` when it has not held within `within` ms.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  what: string,
  within = 10_000,
  every = 10,
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + within;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | null | undefined | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out after ${within} ms waiting for ${what}`);
    await sleep(every);
  }
}
