/**
 * What Redis ran while a test's step ran, as MONITOR reports it: for tests that count the commands
 * the package sends (on a server of their own: other tests' commands would flood the monitor).
 */
import type { Redis } from 'ioredis';

/** A command as MONITOR reports it: its arguments, and `lua` when a script called it. */
export interface Monitored {
  readonly args: string[];
  readonly source: string;
}

/** The commands `redis`'s server ran while `during` ran, in order. */
export async function commandsDuring(redis: Redis, during: () => Promise<unknown>): Promise<Monitored[]> {
  const monitor = await redis.monitor();
  const seen: Monitored[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ args, source }));
  try {
    await during();
    // MONITOR replies follow the commands: a PING on the same server after them marks the end.
    await redis.ping();
  } finally {
    monitor.disconnect();
  }
  return seen;
}
