// The receivers' processes. Each receiver runs in a process of its own (the demo's script, forked
// with `--role receiver`), standing for a machine: it gets its settings from the demo over IPC and
// reports there, each file's results before it acknowledges the file (so that a receiver killed in
// between reports that file again, and it counts once). The demo's side starts them, watches them
// for progress, kills and restarts one for the crash drill, and stops them.

import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { addRow } from './aggregate.mjs';
import {
  checkInterrupted,
  DemoError,
  describeError,
  failRun,
  failure,
  interrupt,
  loadPackage,
  onCleanup,
  onExit,
  unlessInterrupted,
} from './lifecycle.mjs';
import { usedMemory } from './redis.mjs';
import { mib } from './report.mjs';

/** Without any progress of the receivers for this long, the run is stuck: fail instead of hanging. */
const STALL_MS = 60_000;
/** How long receivers get to stop after being told to, before they are killed. */
const STOP_MS = 5000;
const READY_MS = 30_000;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function clockMs() {
  return performance.timeOrigin + performance.now();
}

// ---------------------------------------------------------------------------------------------
// The receiver's side

/**
 * The body of a receiver process: connects, then runs `receive(client, settings, report)`, where
 * `report.sink(file, agg)` is the Writable that adds the file's parsed rows to `agg`, and
 * `report.file(file, agg, csvBytes)` reports a processed file. The demo's 'stop' message aborts `settings.signal`.
 */
export async function receiverProcess(receive) {
  const stop = new AbortController();
  const send = (message) =>
    new Promise((resolve) => {
      if (!process.connected) return resolve();
      process.send(message, () => resolve());
    });
  // Ctrl-C belongs to the demo, which stops its receivers in order.
  process.on('SIGINT', () => {});
  // The demo went away (even killed): stop, and do not linger.
  process.on('disconnect', () => {
    stop.abort(new DemoError('the demo went away'));
    setTimeout(() => process.exit(1), 2000).unref();
  });
  const config = await new Promise((resolve) => process.once('message', resolve));
  process.on('message', (message) => {
    if (message?.type === 'stop') stop.abort(new DemoError('stopped by the demo'));
  });
  const { url, channel, consumer, connectionName, pauseInFile } = config;
  const client = new Redis(url, { lazyConnect: true, connectionName, maxRetriesPerRequest: 3 });
  client.on('error', () => {});
  let ordinal = 0;
  let firstRow = true;
  let progressAt = 0;
  const report = {
    sink(file, agg) {
      const nth = ++ordinal;
      return new Writable({
        objectMode: true,
        highWaterMark: 1024,
        write(row, _encoding, callback) {
          if (firstRow) {
            firstRow = false;
            send({ type: 'first-row', at: clockMs() });
          }
          addRow(agg, row.time.slice(0, 10), row.country, Number(row.bytes));
          if ((agg.rows & 1023) === 0 && Date.now() - progressAt >= 250) {
            progressAt = Date.now();
            send({ type: 'progress' });
          }
          // The crash drill: stop in the middle of this file and wait to be killed.
          if (nth === pauseInFile && agg.rows === 1) send({ type: 'paused', name: file.name });
          else callback();
        },
      });
    },
    file: (file, agg, csvBytes) =>
      send({
        type: 'file',
        key: file.key,
        name: file.name,
        storedBytes: file.stream.deliveredBytes,
        offset: file.offset,
        csvBytes,
        agg,
      }),
  };
  try {
    await loadPackage();
    try {
      await client.connect();
    } catch (err) {
      throw new DemoError(`cannot connect to Redis: ${err.message}`);
    }
    await send({ type: 'ready' });
    await receive(client, { channel, consumer, signal: stop.signal }, report);
    await send({ type: 'done', at: clockMs() });
  } catch (err) {
    if (!stop.signal.aborted) {
      process.exitCode = 1;
      await send({ type: 'error', error: describeError(err) });
    }
  } finally {
    try {
      if (client.status === 'ready') await client.quit();
      else client.disconnect();
    } catch {
      client.disconnect();
    }
    if (process.connected) process.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The demo's side

const liveChildren = new Set();
onExit(() => {
  for (const child of liveChildren) child.kill('SIGKILL');
});
let lastProgress = Date.now();

/**
 * Start `count` receivers of `channel` as processes of `script`, each with its own connection
 * (named `<tag>-receiver-<n>`), and resolve with them once they wait for files (blocked in
 * XREADGROUP, as far as `client` can see). With `killReceiver`, that receiver is killed in the
 * middle of its second file and started again. The cleanups stop them.
 */
export async function startReceivers({ script, client, count, channel, url, tag, killReceiver }) {
  checkInterrupted();
  const receivers = [];
  onCleanup(() => stopReceivers(receivers));
  for (let index = 1; index <= count; index++) {
    receivers.push({
      index,
      script,
      consumer: `receiver-${index}`,
      channel,
      url,
      connectionName: `${tag}-receiver-${index}`,
      proc: undefined,
      files: new Map(), // file key -> the results of its last complete processing
      firstRowAt: undefined,
      doneAt: undefined,
      restarts: 0,
      stopping: false,
    });
  }
  const ready = Promise.all(receivers.map((r) => launch(r, { pauseInFile: r.index === killReceiver ? 2 : undefined })));
  const timeout = sleep(READY_MS, 'timeout', { ref: false });
  if ((await unlessInterrupted(Promise.race([ready, timeout]))) === 'timeout') {
    throw new DemoError(`the receivers were not connected to Redis after ${READY_MS / 1000} s`);
  }
  const blocked = await waitForBlockedReceivers(client, tag, count, 10_000);
  console.log(
    `demo: ${count} receiver${count === 1 ? '' : 's'} ${blocked ? 'blocked in XREADGROUP, ' : ''}waiting on channel ` +
      `${JSON.stringify(channel)} (a process and a Redis connection each; ` +
      `receiveFiles with decompress, csv-parse, ack; ${availableParallelism()} CPUs)`,
  );
  return receivers;
}

/** Resolves once every receiver has processed the whole channel; rejects on the run's first failure. */
export function allFinished(receivers) {
  return unlessInterrupted(Promise.race([Promise.all(receivers.map((r) => r.finished)), failure]));
}

/**
 * Fail the run when no receiver makes progress for STALL_MS (say what Redis's memory was, against
 * the sender's limit). Returns the function that stops watching; the cleanups stop it too.
 */
export function watchForStall(monitor, maxRedisMemory) {
  lastProgress = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress < STALL_MS) return;
    usedMemory(monitor)
      .catch(() => Number.NaN)
      .then((used) =>
        failRun(
          new DemoError(
            `no receiver made progress for ${STALL_MS / 1000} s (Redis used_memory ${mib(used)}, ` +
              `maxRedisMemory ${mib(maxRedisMemory)}): the run is stuck`,
          ),
        ),
      );
  }, 1000);
  const stop = () => clearInterval(watchdog);
  onCleanup(stop);
  return stop;
}

/** Start (or restart) the receiver's process; resolves once it is connected. */
function launch(receiver, { pauseInFile } = {}) {
  const child = fork(receiver.script, ['--role', 'receiver'], {
    // detached: a Ctrl-C in the terminal reaches only the demo, which stops the receivers in order.
    detached: true,
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  liveChildren.add(child);
  const proc = { child, stderr: '', done: false, expectKill: false, received: [], offsets: [] };
  receiver.proc = proc;
  child.stderr.on('data', (chunk) => {
    proc.stderr = (proc.stderr + chunk.toString('utf8')).slice(-4096);
  });
  let markReady;
  proc.ready = new Promise((resolve) => (markReady = resolve));
  // Messages sent before the child's end arrive before its IPC channel closes: wait for both.
  const disconnected = new Promise((resolve) => child.once('disconnect', resolve));
  proc.exited = new Promise((resolve) => {
    child.once('exit', async (code, signal) => {
      liveChildren.delete(child);
      if (child.connected) await disconnected;
      markReady();
      resolve();
      if (proc.expectKill || receiver.stopping) return;
      if (code === 0 && proc.done) {
        receiver.markFinished();
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const tail = proc.stderr.trim().split('\n').slice(-3).join(' | ');
      failRun(new DemoError(`receiver ${receiver.index} ${how} before it was done${tail ? `: ${tail}` : ''}`));
    });
  });
  receiver.finished ??= new Promise((resolve) => (receiver.markFinished = resolve));
  child.once('error', (err) =>
    failRun(new DemoError(`receiver ${receiver.index} could not be started: ${err.message}`)),
  );
  child.on('message', (message) => {
    lastProgress = Date.now();
    switch (message.type) {
      case 'ready':
        markReady();
        break;
      case 'first-row':
        receiver.firstRowAt ??= message.at;
        break;
      case 'file':
        receiver.files.set(message.key, message);
        proc.received.push(message.name);
        proc.offsets.push(message.offset);
        break;
      case 'paused':
        crashDrill(receiver, message.name).catch(failRun);
        break;
      case 'done':
        proc.done = true;
        receiver.doneAt = message.at;
        break;
      case 'error':
        failRun(new DemoError(`receiver ${receiver.index} failed: ${message.error}`));
        break;
    }
  });
  child.send({
    url: receiver.url,
    channel: receiver.channel,
    consumer: receiver.consumer,
    connectionName: receiver.connectionName,
    pauseInFile,
  });
  return proc.ready;
}

/** --kill-receiver: the receiver stopped in the middle of a file; kill it hard and start it again. */
async function crashDrill(receiver, name) {
  const proc = receiver.proc;
  proc.expectKill = true;
  proc.child.kill('SIGKILL');
  await proc.exited;
  if (interrupt.signal.aborted) return;
  receiver.restarts++;
  receiver.killedIn = name;
  console.log(
    `demo: receiver ${receiver.index} killed (SIGKILL) in the middle of ${name}, ` +
      `after ${receiver.files.size} acknowledged file${receiver.files.size === 1 ? '' : 's'}; ` +
      `starting it again as consumer ${receiver.consumer}`,
  );
  await launch(receiver);
}

/** Tell every receiver process to stop, then kill those that do not within STOP_MS. */
async function stopReceivers(receivers) {
  const procs = receivers
    .map((r) => {
      r.stopping = true;
      return r.proc;
    })
    .filter((p) => p !== undefined && liveChildren.has(p.child));
  for (const p of procs) if (p.child.connected) p.child.send({ type: 'stop' });
  const all = Promise.all(procs.map((p) => p.exited));
  const timer = setTimeout(() => {
    for (const p of procs) p.child.kill('SIGKILL');
  }, STOP_MS);
  await all;
  clearTimeout(timer);
}

/**
 * Best effort: wait until every receiver's blocking connection (named `<tag>-receiver-<n>`, like
 * the receiver's own connection it duplicates) is blocked in XREADGROUP, waiting for a file.
 */
async function waitForBlockedReceivers(client, tag, count, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    checkInterrupted();
    let clients;
    try {
      clients = String(await client.client('LIST'));
    } catch {
      return false; // CLIENT LIST not allowed (ACL): just go on
    }
    const blocked = clients
      .split('\n')
      .filter((line) => line.includes(` name=${tag}-receiver-`) && /\bflags=\S*b/.test(line));
    if (blocked.length >= count) return true;
    await sleep(10);
  }
  return false;
}
