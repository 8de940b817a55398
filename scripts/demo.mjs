#!/usr/bin/env node
// The package's main job in one command (`npm run demo`): one machine has a directory of logs, many
// machines each need every file, start processing before the upload ends, and Redis is clean once
// they are all done, without running out of memory.
//
// This file is that story in the package's calls; scripts/demo/ holds the rest: the generated logs
// (log-generator.mjs, aggregate.mjs), the receiver processes (processes.mjs), the server, connections
// and key checks (redis.mjs), what is printed and checked (report.mjs), options.mjs and lifecycle.mjs
// (cleanup on success, failure and Ctrl-C).
//
// Usage: node scripts/demo.mjs [--size-mib N] [--receivers N] [--channel NAME] [--seed N] [--kill-receiver N]
// Without REDIS_URL it starts a private redis-server (free 127.0.0.1 port, temp dir, no persistence)
// and stops it at the end. With REDIS_URL it uses that server and removes only what it created.
// Exit code 0 when every receiver matches and Redis is left clean, 1 otherwise (130 on Ctrl-C).

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse';
import { newAggregate } from './demo/aggregate.mjs';
import {
  DemoError,
  interrupt,
  loadPackage,
  makeTempDir,
  onCleanup,
  run,
  unlessInterrupted,
} from './demo/lifecycle.mjs';
import { DAYS, GZIP_LEVEL, generate } from './demo/log-generator.mjs';
import { parseOptions, USAGE } from './demo/options.mjs';
import { allFinished, clockMs, receiverProcess, startReceivers, watchForStall } from './demo/processes.mjs';
import * as db from './demo/redis.mjs';
import { checkReceivers, mib, printLogDirectory, printRun, sizeOf } from './demo/report.mjs';

const MiB = 1024 * 1024;
const TTL_SECONDS = 3600;
/** maxRedisMemory = used_memory at the start + this many times the largest file (at least MIN_HEADROOM). */
const HEADROOM_FACTOR = 1.6;
const MIN_HEADROOM = 4 * MiB;

/** A receiver (a process of its own): every file of the channel, gunzipped, through csv-parse, then ack. */
async function receive(redis, { channel, consumer, signal }, report) {
  const { receiveFiles } = await loadPackage();
  for await (const file of receiveFiles(redis, channel, { consumer, decompress: true, signal })) {
    const agg = newAggregate();
    const parser = parse({ columns: true });
    await pipeline(file.stream, parser, report.sink(file, agg)); // per day and country
    await report.file(file, agg, parser.info.bytes); // before the ack: a receiver killed here gets it again
    await file.ack();
  }
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const { closeChannel, list, remove, removeChannel, sendFiles } = await loadPackage();
  const tempDir = makeTempDir();

  // 1. The server, a connection for the sender and one to watch Redis's memory.
  const { url, privateServer } = await db.openServer();
  const tag = `rfs-demo-${randomBytes(3).toString('hex')}`;
  const redis = await db.connectRedis(url, `${tag}-sender`);
  const monitor = await db.connectRedis(url, `${tag}-monitor`);
  await db.printVersion(redis);

  // 2. The channel: never touch one the demo did not create.
  const channel = opts.channel ?? (privateServer ? 'demo-logs' : `demo-logs-${randomBytes(4).toString('hex')}`);
  await db.refuseExistingChannel(redis, channel);

  // 3. The sender's log directory, and the expected aggregate computed directly while generating it.
  const logDir = join(tempDir, 'logs');
  mkdirSync(logDir);
  console.log(
    `demo: generating ${DAYS.length} days of access log (seed ${opts.seed}, ~${opts.sizeMiB} MiB in total as sent, ` +
      `the oldest gzipped at level ${GZIP_LEVEL}) ...`,
  );
  const { files, seconds } = await generate(logDir, opts.sizeMiB, opts.seed, interrupt.signal);
  printLogDirectory(logDir, files, seconds);

  // 4. The receivers, first: each a process with its own connection, as on separate machines.
  let sending;
  let channelRemoved = false;
  onCleanup(async () => {
    // After a failure or Ctrl-C on a shared server: the channel's files (acknowledged ones are
    // gone already) and the channel. A private server goes away with everything in it.
    if (channelRemoved || privateServer) return;
    await Promise.race([sending?.catch(() => {}), sleep(10_000, undefined, { ref: false })]);
    for await (const f of list(redis, { match: `${db.globEscape(channel)}/*` })) await remove(redis, f.key);
    await removeChannel(redis, channel);
  });
  const receivers = await startReceivers({
    script: fileURLToPath(import.meta.url),
    client: redis,
    count: opts.receivers,
    channel,
    url,
    tag,
    killReceiver: opts.killReceiver,
  });

  // 5. The sender, with a memory limit that bites: room for the largest file and a half.
  const startMemory = await db.usedMemory(monitor);
  const headroom = Math.max(MIN_HEADROOM, Math.ceil(HEADROOM_FACTOR * Math.max(...files.map((f) => f.size))));
  const maxRedisMemory = Math.ceil(startMemory + headroom);
  console.log(
    `demo: sending ${files.length} files (${sizeOf(files.reduce((n, f) => n + f.size, 0))}) with sendFiles: ` +
      `consumers ${opts.receivers}, ttl ${TTL_SECONDS} s, maxRedisMemory ${mib(maxRedisMemory)} = ` +
      `used_memory at start ${mib(startMemory)} + ${mib(headroom)} (${HEADROOM_FACTOR} x the largest file` +
      `${headroom === MIN_HEADROOM ? `, at least ${mib(MIN_HEADROOM)}` : ''})`,
  );
  const sampler = db.sampleMemory(monitor, maxRedisMemory, `${tag}-sender`);
  onCleanup(() => sampler.stop());
  const stopWatching = watchForStall(monitor, maxRedisMemory);
  const senderStart = clockMs();
  let senderEnd;
  sending = (async () => {
    const paths = files.map((f) => f.path);
    const options = { consumers: opts.receivers, maxRedisMemory, ttl: TTL_SECONDS, contentType: 'text/csv' };
    const sent = await sendFiles(redis, channel, paths, { ...options, signal: interrupt.signal });
    senderEnd = clockMs();
    await closeChannel(redis, channel);
    return sent;
  })();
  sending.catch(() => {});
  const sent = await unlessInterrupted(sending);
  const took = ((senderEnd - senderStart) / 1000).toFixed(2);
  console.log(`demo: the sender sent ${sent.length} files in ${took} s and closed the channel`);

  // 6. The receivers end at the close, once they have processed and acknowledged every file.
  await allFinished(receivers);
  stopWatching();
  await sampler.stop();
  const drill = opts.killReceiver !== undefined;
  printRun({ receivers, files, senderStart, sampler, maxRedisMemory, drill });

  // 7. The check: every receiver, every file, against the direct computation.
  checkReceivers(receivers, files, opts.killReceiver);

  // 8. Redis left clean: every file went with its last acknowledgement; then the channel goes.
  await db.expectFilesDeleted(redis, channel);
  if (!(await removeChannel(redis, channel))) {
    throw new DemoError(`removeChannel found no channel ${JSON.stringify(channel)}`);
  }
  channelRemoved = true;
  await db.expectClean(redis, channel, privateServer);
  return 0;
}

if (process.argv[2] === '--role' && process.argv[3] === 'receiver' && process.send) await receiverProcess(receive);
else await run(main);
