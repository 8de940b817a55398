// Starts a private redis-server for the benchmark: 127.0.0.1 only, a free port picked by the OS,
// its own temp dir, no persistence, no memory limit. Registered with cleanup.mjs, so that it is
// stopped at the end, on errors and on Ctrl-C.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { track } from './cleanup.mjs';

/** Resolves true when nothing listens on 127.0.0.1:`port` (and we may bind it). */
export function isPortFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** PING over a raw socket; resolves true on +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

/**
 * `pickPort` chooses the port of each attempt (default: one the OS says is free); a cluster node
 * needs one whose bus port, port + 10000, is free as well. An attempt that loses its port to
 * another process meanwhile ("Address already in use") is retried on a new one.
 *
 * @param {{ bin?: string, args?: string[], pickPort?: () => Promise<number> }} [options]
 * @returns {Promise<{ url: string, port: number, pid: number, dir: string, stop: () => Promise<void> }>}
 */
export async function startRedisServer({ bin = 'redis-server', args = [], pickPort = freePort } = {}) {
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await pickPort();
    const dir = mkdtempSync(join(tmpdir(), 'rfs-bench-redis-'));
    const argv = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--maxmemory', '0',
      '--logfile', '',
      ...args,
    ];
    const child = spawn(bin, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output = (output + d).slice(-16384)));
    child.stderr.on('data', (d) => (output = (output + d).slice(-16384)));
    let exited = false;
    const exit = new Promise((resolve) => {
      child.once('error', (err) => {
        output += `\nspawn error: ${err.message}`;
        exited = true;
        resolve();
      });
      child.once('exit', () => {
        exited = true;
        resolve();
      });
    });
    const alive = () => !exited && child.exitCode === null && child.signalCode === null;
    const stop = async () => {
      if (alive()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => alive() && child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const untrack = track(`redis-server :${port}`, stop, () => {
      if (alive()) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    for (let i = 0; i < 200 && alive(); i++) {
      if (await ping(port)) {
        return {
          url: `redis://127.0.0.1:${port}`,
          port,
          pid: child.pid,
          dir,
          stop: async () => {
            untrack();
            await stop();
          },
        };
      }
      await sleep(25);
    }
    untrack();
    await stop();
    lastError = new Error(`redis-server on port ${port} did not come up:\n${output.trim() || '(no output)'}`);
    if (!/Address already in use|Failed listening on port/i.test(output)) break;
  }
  throw lastError;
}
