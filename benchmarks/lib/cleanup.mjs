// One place that knows everything the benchmark started (redis-server, child processes, worker
// threads, temp dirs) and stops / removes it: at the normal end, on an error, and on Ctrl-C
// (SIGINT), SIGTERM or SIGHUP. A synchronous last resort runs on 'exit' for whatever is left.

import { rmSync } from 'node:fs';

/** @type {Set<{ name: string, stop: () => Promise<void> | void, stopSync?: () => void }>} */
const resources = new Set();
let installed = false;
let interrupted = false;

/**
 * Register something to stop at the end. `stop` may be async; `stopSync` (optional) is the
 * synchronous last resort used from the 'exit' handler. Returns a function that unregisters it.
 */
export function track(name, stop, stopSync) {
  install();
  const entry = { name, stop, stopSync };
  resources.add(entry);
  return () => resources.delete(entry);
}

/** A temp dir removed at the end (also on errors and Ctrl-C). */
export function trackDir(dir) {
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const untrack = track(`dir ${dir}`, remove, remove);
  return () => {
    untrack();
    remove();
  };
}

/**
 * A redis-server or cluster from scripts/lib/redis-launcher.mjs, stopped at the end (the launcher
 * itself kills what is left when the process exits). Returns it.
 */
export function trackServer(server, name = `redis-server :${server.port}`) {
  track(name, () => server.stop());
  return server;
}

/** A child process killed at the end. Unregisters itself when the child exits. */
export function trackChild(child, name = `child ${child.pid}`) {
  const alive = () => child.exitCode === null && child.signalCode === null;
  const untrack = track(
    name,
    async () => {
      if (!alive()) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => alive() && child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
    () => alive() && child.kill('SIGKILL'),
  );
  child.once('exit', untrack);
  return untrack;
}

/** A worker thread terminated at the end. Unregisters itself when the worker exits. */
export function trackWorker(worker, name = `worker ${worker.threadId}`) {
  const untrack = track(name, () => worker.terminate().then(() => {}));
  worker.once('exit', untrack);
  return untrack;
}

/** Stop everything registered, newest first. Errors are reported, never thrown. */
export async function cleanupAll() {
  const list = [...resources].reverse();
  resources.clear();
  for (const r of list) {
    try {
      await r.stop();
    } catch (err) {
      console.error(`bench: cleanup of ${r.name} failed: ${err?.message ?? err}`);
    }
  }
}

export function wasInterrupted() {
  return interrupted;
}

/**
 * Run a script's `main` and stop everything it started, whatever happens; the exit code is what
 * `main` returns (0 when nothing), else 1 on an error, which is printed under `name` unless Ctrl-C
 * or a signal caused it.
 */
export async function runScript(name, main) {
  let code = 1;
  try {
    code = (await main()) ?? 0;
  } catch (err) {
    if (!interrupted) console.error(`${name}: ${err?.stack ?? err}`);
  } finally {
    await cleanupAll();
  }
  process.exitCode = code;
}

function install() {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const r of resources) {
      try {
        r.stopSync?.();
      } catch {
        // best effort
      }
    }
    resources.clear();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (interrupted) {
        console.error(`\nbench: ${signal} again, exiting at once`);
        process.exit(130);
      }
      interrupted = true;
      console.error(`\nbench: ${signal}, stopping everything the benchmark started…`);
      const force = setTimeout(() => process.exit(130), 10_000);
      force.unref();
      cleanupAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}
