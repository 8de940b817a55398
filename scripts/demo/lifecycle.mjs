// The demo's run, apart from its story: the package loaded by its name, the errors the demo expects
// and prints as one line, the cleanups undone in reverse order on success, on failure and on
// Ctrl-C, the interrupt every wait races against, and the exit code.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An error the demo expects and explains: printed as one line, without a stack trace. */
export class DemoError extends Error {}

let pkg;

/**
 * The package, by its name: it resolves to dist/ through the package's own "exports". Imported on
 * demand so that an unbuilt package gets a clear message instead of a stack trace.
 */
export async function loadPackage() {
  try {
    pkg ??= await import('redis-file-stream');
    return pkg;
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && /redis-file-stream|[\\/]dist[\\/]/.test(err.message)) {
      throw new DemoError(
        'the package is not built (dist/ is missing): run `node scripts/build.mjs` first, ' +
          'or `npm run demo`, which does',
      );
    }
    throw err;
  }
}

const isRedisFileError = (err) => pkg !== undefined && err instanceof pkg.RedisFileError;

export function describeError(err) {
  if (isRedisFileError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

function isExpected(err) {
  return err instanceof DemoError || isRedisFileError(err) || err?.name === 'AbortError' || err?.code === 'ENOSPC';
}

// Everything the demo creates registers how to undo it; `exitHooks` are the synchronous last resort
// for an exit that skipped the cleanups: never leave a process or temp files behind.
const cleanups = [];
const exitHooks = [];

export function onCleanup(step) {
  cleanups.push(step);
}

export function onExit(hook) {
  exitHooks.push(hook);
}

/** Undo everything, in reverse order; returns false when a step failed (it is reported). */
async function runCleanups() {
  let ok = true;
  while (cleanups.length > 0) {
    const step = cleanups.pop();
    try {
      await step();
    } catch (err) {
      ok = false;
      console.error(`demo: cleanup failed: ${describeError(err)}`);
    }
  }
  return ok;
}

/** A temp dir of the run, removed by the cleanups (or at exit). */
export function makeTempDir() {
  let dir = mkdtempSync(join(tmpdir(), 'redis-file-stream-demo-'));
  const created = dir;
  onCleanup(() => {
    rmSync(created, { recursive: true, force: true });
    dir = undefined;
  });
  onExit(() => dir && rmSync(dir, { recursive: true, force: true }));
  return created;
}

/** Aborted on Ctrl-C (SIGINT), SIGTERM, a closed output, or the first failure of the run. */
export const interrupt = new AbortController();
let interrupted = false;

/**
 * The run's first failure: rejects `failure`, which every wait of the run races against, and
 * aborts the sender (which the memory limit would otherwise hold back forever).
 */
export let failRun;
export const failure = new Promise((_, reject) => {
  failRun = (err) => {
    reject(err);
    if (!interrupt.signal.aborted) interrupt.abort(err);
  };
});
failure.catch(() => {});

export function checkInterrupted() {
  if (interrupt.signal.aborted) throw interrupt.signal.reason;
}

/** Resolves with `promise`, or rejects as soon as the run is interrupted or failed. */
export function unlessInterrupted(promise) {
  if (interrupt.signal.aborted) return Promise.reject(interrupt.signal.reason);
  let onAbort;
  const aborted = new Promise((_, reject) => {
    onAbort = () => reject(interrupt.signal.reason);
    interrupt.signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => interrupt.signal.removeEventListener('abort', onAbort));
}

function installProcessHandlers() {
  // Output piped into a command that quit early (`| head`): stop the demo and clean up, quietly.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err) => {
      if (err.code !== 'EPIPE') throw err;
      interrupt.abort(new DemoError('the output was closed'));
    });
  }
  process.on('exit', () => {
    for (const hook of exitHooks) hook();
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (interrupted) {
        console.error('demo: interrupted again, exiting at once');
        process.exit(130);
      }
      interrupted = true;
      console.error(`\ndemo: ${signal} received, stopping the receivers and cleaning up`);
      interrupt.abort(new DemoError(`interrupted by ${signal}`));
    });
  }
}

/** Run `main` (which resolves with the exit code), print its error if any, and clean up. */
export async function run(main) {
  installProcessHandlers();
  let code;
  try {
    code = await main();
  } catch (err) {
    code = interrupted ? 130 : 1;
    if (interrupted) {
      console.error('demo: interrupted');
    } else if (isExpected(err)) {
      console.error(`demo: ${describeError(err)}`);
    } else {
      console.error('demo: unexpected error:');
      console.error(err);
    }
  }
  if (!(await runCleanups()) && code === 0) code = 1;
  if (code === 0) {
    const server = process.env.REDIS_URL ? '' : 'stopped the private redis-server and ';
    console.log(`demo: ${server}removed the temp dir`);
  }
  process.exitCode = code;
  // Nothing should keep the process alive now; if something does, do not hang.
  setTimeout(() => process.exit(code), 3000).unref();
}
