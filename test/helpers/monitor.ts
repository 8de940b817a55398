/**
 * What Redis ran while a test's step ran, as MONITOR reports it: for tests that count the commands
 * the package sends (on a server of their own: other tests' commands would flood the monitor).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A command as MONITOR reports it: its arguments, and `lua` when a script called it. */
export interface Monitored {
  readonly args: string[];
  readonly source: string;
}

/** The commands `redis`'s server ran while `during` ran, in order. */
export async function commandsDuring(redis: Redis, during: () => Promise<unknown>): Promise<Monitored[]> {
  // Resolves once MONITOR is on: every command from here on is reported.
  const monitor = await redis.monitor();
  const marker = `commands-during-end-${randomUUID()}`;
  const seen: Monitored[] = [];
  const ended = new Promise<void>((resolve) => {
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) resolve();
      else seen.push({ args, source });
    });
  });
  try {
    await during();
    // The end: a command sent after the step's, once the monitor has reported it. The reply to it
    // on `redis` is no end: the report comes on the monitor's own connection, maybe later.
    await redis.echo(marker);
    await ended;
  } finally {
    monitor.disconnect();
  }
  return seen;
}

/**
 * An XRANGE on a file's chunk stream, by chunk: the chunk its start id is in (`from`; -1 for `-`
 * and the header), the chunk its end id bounds it at (`to`; Infinity for `+`), and its COUNT.
 */
export interface ChunkRange {
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

/** The XRANGEs on `key`'s chunk stream that Redis ran while `during` ran (scripts' included). */
export async function chunkRangesDuring(
  redis: Redis,
  key: string,
  during: () => Promise<unknown>,
): Promise<ChunkRange[]> {
  return (await commandsDuring(redis, during))
    .filter(({ args }) => args[0]?.toLowerCase() === 'xrange' && args[1]?.includes(key) && args[1].includes(':chunks:'))
    .map(({ args }) => ({
      from: chunkOfId(args[2]!),
      to: args[3] === '+' ? Infinity : chunkOfId(args[3]!),
      count: Number(args[args.findIndex((a) => a.toLowerCase() === 'count') + 1]),
    }));
}

/** The chunk an XRANGE start or end id (`(` for exclusive) is in: -1 for `-`, `0-0` and the header. */
export function chunkOfId(id: string): number {
  const bare = id.replace(/^\(/, '');
  return bare === '-' || bare === '0-0' || bare === '0-1' ? -1 : Number(bare.slice(0, bare.indexOf('-')));
}
