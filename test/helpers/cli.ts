/**
 * The `redis-file` command, run as its users run it: the built binary (dist/esm/cli/main.js) in a
 * child process, against the shared redis-server of the run (REDIS_URL in its environment) unless
 * a test gives another. Its stderr is a pipe, not a terminal, so no progress bar is drawn and stderr
 * holds only errors (and the lines a command prints there on purpose).
 *
 *   import { expectOneLine, run, start, useTempDir } from './helpers/cli.js';
 *   const dir = useTempDir();
 *   const r = await run(['put', '-', key], { input: 'hello' });
 *
 * These tests exercise dist/, not src/: run `npm run build` after changing src/cli/.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect } from 'vitest';
import { channelLogKey } from '../../src/format.js';
import { type FileStat, list, stat } from '../../src/index.js';
import { sharedRedisUrl } from './clients.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(root, 'dist', 'esm', 'cli', 'main.js');
/** Longest any one run of the command may take before the test gives up on it (not a duration check). */
export const RUN_TIMEOUT = 60_000;

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface Running {
  child: ChildProcessWithoutNullStreams;
  /** What the child printed so far. */
  stdout(): Buffer;
  stderr(): string;
  /** Resolves when the child has exited (killed after RUN_TIMEOUT). */
  done: Promise<Result>;
}

export interface RunOptions {
  /** Environment variables on top of the test's own (REDIS_URL is the shared server unless given here). */
  env?: Record<string, string>;
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // The command's own settings come from the test alone, never from the shell that runs vitest.
  const e: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: sharedRedisUrl() };
  delete e.REDIS_FILE_DEBUG;
  delete e.REDIS_FILE_REDIS_TIMEOUT;
  return { ...e, ...extra };
}

/** Start `node dist/esm/cli/main.js ...args`. */
export function start(args: string[], options: RunOptions = {}): Running {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (dist/ predates src/cli/)`);
  const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env: env(options.env), stdio: 'pipe' });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // A test may close its end of stdin early; the child's EPIPE is its business.
  child.stdin.on('error', () => {});
  const done = new Promise<Result>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-file ${args.join(' ')} did not exit within ${RUN_TIMEOUT} ms; stderr: ${err}`));
    }, RUN_TIMEOUT);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, done };
}

/** Run the command to its end, with `input` on its stdin (or none). */
export async function run(args: string[], options: RunOptions & { input?: Buffer | string } = {}): Promise<Result> {
  const running = start(args, options);
  running.child.stdin.end(options.input);
  return running.done;
}

/** Poll `check` until it is true (gives up after RUN_TIMEOUT: a hang, not a slow run). */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + RUN_TIMEOUT;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

/** Wait until the running command has printed a line on stderr that matches `pattern`; returns that line. */
export async function waitForStderrLine(running: Running, pattern: RegExp): Promise<string> {
  let line: string | undefined;
  await waitUntil(`stderr has a line matching ${pattern} (stderr so far: ${JSON.stringify(running.stderr())})`, () => {
    line = running
      .stderr()
      .split('\n')
      .find((l) => pattern.test(l));
    return line !== undefined || running.child.exitCode !== null || running.child.signalCode !== null;
  });
  if (line === undefined)
    throw new Error(`the command exited without a stderr line matching ${pattern}; stderr: ${running.stderr()}`);
  return line;
}

/** An expected failure: exactly one line on stderr, no stack trace. */
export function expectOneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

/** A temporary directory for the test file, created before its tests and removed after them. */
export function useTempDir(): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redis-file-cli-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error('the temporary directory exists only inside the tests');
    return dir;
  };
}

/** The keys of the files announced on a channel, in order (the log is described in docs/distribution.md). */
export async function announced(redis: Redis, channel: string): Promise<string[]> {
  const entries = await redis.xrange(channelLogKey('rfs:', channel), '-', '+');
  return entries.flatMap(([, fields]) => (fields[0] === 'file' ? [fields[1]!] : []));
}

/**
 * Whether the process `pid` has `path` open (Linux's /proc): a command that has opened its FIFO
 * and waits for the FIFO's writer.
 */
export function holdsOpen(pid: number, path: string): boolean {
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
    } catch {
      return false; // closed meanwhile
    }
  });
}

/** Wait until `n` receivers have joined the channel: each is a consumer group on its log. */
export async function joined(redis: Redis, channel: string, n: number): Promise<void> {
  await waitUntil(`${n} receivers have joined the channel`, async () => {
    const groups = (await redis.xinfo('GROUPS', channelLogKey('rfs:', channel)).catch(() => [])) as unknown[];
    return groups.length >= n;
  });
}

/** The names in receive's lines "received <name> (<size>)…", in order. */
export function receivedNames(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('received '))
    .map((line) => line.split(' ')[1]!);
}

/** The file's stat, or `undefined` when there is none. */
export async function stateOf(redis: Redis, key: string): Promise<FileStat | undefined> {
  return stat(redis, key).catch(() => undefined);
}

/** The keys of the stored files that match `pattern`, sorted. */
export async function storedKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  for await (const file of list(redis, { match: pattern })) keys.add(file.key);
  return [...keys].sort();
}
