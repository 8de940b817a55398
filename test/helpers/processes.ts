/**
 * Node processes running the fixtures of test/fixtures (receivers and senders standing for
 * machines), which print one JSON event per line on stdout.
 *
 *   import { afterAll } from 'vitest';
 *   import { killAll, receiver } from './helpers/processes.js';
 *   afterAll(killAll);
 *   const r = receiver(sharedRedisUrl(), channel, 'r1', { decompress: true });
 *   await r.waitFor((e) => e.event === 'done');
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** How long to wait for an event before taking the run for a hang (not a timing assertion). */
const HANG_MS = 60_000;

/** One JSON line printed by a fixture. */
export interface FixtureEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

export interface FixtureProcess {
  readonly pid: number;
  /** Every event printed so far, in order. */
  readonly events: FixtureEvent[];
  /** The events of one kind, in order. */
  all(event: string): FixtureEvent[];
  /** Resolves with the first event (printed so far or later) for which `match` holds. */
  waitFor(match: (e: FixtureEvent) => boolean, what?: string): Promise<FixtureEvent>;
  /** Resolves when the process has exited, with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  stderr(): string;
}

const live = new Set<ChildProcess>();

/** Start `node test/fixtures/<script> ...args`. */
export function fixture(script: string, args: string[]): FixtureProcess {
  const child = spawn(process.execPath, [join(fixtures, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const events: FixtureEvent[] = [];
  const waiting = new Set<() => void>();
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (line.trim()) events.push(JSON.parse(line) as FixtureEvent);
    }
    for (const wake of waiting) wake();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      live.delete(child);
      for (const wake of waiting) wake();
      resolve({ code, signal });
    });
  });
  let gone = false;
  void exited.then(() => (gone = true));
  const describe = (): string => `${script} ${args.slice(1).join(' ')}`;
  return {
    pid: child.pid!,
    events,
    all: (event) => events.filter((e) => e.event === event),
    exited,
    stderr: () => err,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    waitFor(match, what = 'an event') {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            done(
              new Error(
                `${describe()}: no ${what} within ${HANG_MS} ms; events: ${JSON.stringify(events)}; stderr: ${err}`,
              ),
            ),
          HANG_MS,
        );
        const check = (): void => {
          const found = events.find(match);
          if (found) done(undefined, found);
          else if (gone)
            done(new Error(`${describe()} exited without ${what}; events: ${JSON.stringify(events)}; stderr: ${err}`));
        };
        const done = (error?: Error, found?: FixtureEvent): void => {
          clearTimeout(timer);
          waiting.delete(check);
          if (error) reject(error);
          else resolve(found!);
        };
        waiting.add(check);
        check();
      });
    },
  };
}

/** A receiver process (test/fixtures/receiver.mjs) on `channel` as `consumer`. */
export function receiver(url: string, channel: string, consumer: string, options: object = {}): FixtureProcess {
  return fixture('receiver.mjs', [url, channel, consumer, JSON.stringify(options)]);
}

/** A sender process (test/fixtures/sender.mjs). */
export function sender(url: string, channel: string, options: object): FixtureProcess {
  return fixture('sender.mjs', [url, channel, JSON.stringify(options)]);
}

/** A receiver's run to the channel's close: its file events, once it printed `done` and exited 0. */
export async function finish(p: FixtureProcess): Promise<FixtureEvent[]> {
  await p.waitFor((e) => e.event === 'done', 'done');
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`exit ${code}; stderr: ${p.stderr()}`);
  return p.all('file');
}

/** SIGKILL every fixture process still running. Call it in `afterAll`. */
export function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
