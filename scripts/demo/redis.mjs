// The demo's Redis: the server (REDIS_URL's, or a private one from the shared launcher), its
// connections, the SCANs that prove the demo leaves no key behind, and the used_memory sampling.

import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startRedis } from '../lib/redis-launcher.mjs';
import { parseUsedMemory, usedMemory } from '../lib/used-memory.mjs';
import { checkInterrupted, DemoError, onCleanup } from './lifecycle.mjs';

/** The package's default key prefix: every key the demo creates starts with it. */
const PREFIX = 'rfs:';
export const SAMPLE_MS = 5;

/**
 * The server of the run: the one at REDIS_URL, or a private redis-server (free 127.0.0.1 port, temp
 * dir, no persistence) that the cleanups stop. The cleanups close every connection before that.
 */
export async function openServer() {
  let url = process.env.REDIS_URL;
  if (url) {
    console.log(`demo: using the Redis server at REDIS_URL (${redactUrl(url)})`);
  } else {
    let server;
    try {
      // detached: a Ctrl-C in the terminal reaches only the demo, which then stops the server in order.
      server = await startRedis({ detached: true });
    } catch (err) {
      const missing = err.cause?.code === 'ENOENT';
      throw new DemoError(missing ? 'redis-server is not installed (run: bash scripts/ensure-redis.sh)' : err.message);
    }
    onCleanup(() => server.stop());
    url = server.url;
    console.log(`demo: started a private redis-server on 127.0.0.1:${server.port} (temp dir, no persistence)`);
  }
  checkInterrupted();
  onCleanup(closeConnections);
  return { url, privateServer: !process.env.REDIS_URL };
}

const connections = [];

/** A new ioredis connection, ready; closed by the cleanups. */
export async function connectRedis(url, name) {
  const client = new Redis(url, { lazyConnect: true, connectionName: name, maxRetriesPerRequest: 3 });
  // Errors reach the commands that failed; this keeps an 'error' event from crashing the demo.
  let lastError;
  client.on('error', (err) => (lastError = err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new DemoError(`cannot connect to Redis at ${redactUrl(url)}: ${(lastError ?? err).message}`);
  }
  connections.push(client);
  return client;
}

async function closeConnections() {
  await Promise.all(
    connections.splice(0).map(async (client) => {
      try {
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      } catch {
        client.disconnect();
      }
    }),
  );
}

function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(REDIS_URL)';
  }
}

export async function printVersion(client) {
  const version = /^redis_version:(\S+)/m.exec(await client.info('server').catch(() => ''))?.[1];
  if (version) console.log(`demo: Redis ${version}`);
}

export { usedMemory };

/** A Redis glob matching exactly `text`. */
export const globEscape = (text) => text.replace(/[*?[\]\\]/g, '\\$&');

/**
 * SCAN patterns of every key of a channel under the default prefix (docs/format.md): its log
 * `rfs:channel:{<name>}:log`, and the keys `rfs:{<name>/<upload>/<file>}:…` of the files sent on it.
 * In key names `%`, `{` and `}` are percent-encoded.
 */
function channelKeyPatterns(channel) {
  const name = globEscape(channel.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D')));
  return { log: `${PREFIX}channel:{${name}}:*`, files: `${PREFIX}{${name}/*` };
}

async function scanKeys(client, pattern) {
  const found = new Set();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) found.add(key);
  } while (cursor !== '0');
  return [...found].sort();
}

/** Every key of the channel and of its files, sorted. */
async function channelKeys(client, channel) {
  const patterns = channelKeyPatterns(channel);
  return [...(await scanKeys(client, patterns.log)), ...(await scanKeys(client, patterns.files))];
}

/** The demo never touches a channel it did not create. */
export async function refuseExistingChannel(client, channel) {
  const existing = await channelKeys(client, channel);
  if (existing.length > 0) {
    throw new DemoError(
      `the channel ${JSON.stringify(channel)} already has ${existing.length} key${existing.length === 1 ? '' : 's'} ` +
        `on this server (${existing[0]}); the demo never touches a channel it did not create: pick another --channel`,
    );
  }
}

/** Every file went with its last acknowledgement: no key of the channel's files is left. */
export async function expectFilesDeleted(client, channel) {
  const fileKeys = await scanKeys(client, channelKeyPatterns(channel).files);
  if (fileKeys.length > 0) {
    throw new DemoError(
      `${fileKeys.length} keys of the channel's files are still in Redis although every receiver acknowledged ` +
        `every file (${fileKeys[0]})`,
    );
  }
}

/** After removeChannel: no key of the demo is left (on a private server: no key at all). */
export async function expectClean(client, channel, privateServer) {
  const left = await channelKeys(client, channel);
  if (left.length > 0) throw new DemoError(`${left.length} keys of the demo are left in Redis (${left[0]})`);
  if (privateServer) {
    // The package's notification stream for writers held back by a memory limit, shared by every
    // writer of the prefix (a server of the demo's own has no other writer).
    await client.del(`${PREFIX}memory:freed`);
    const dbsize = await client.dbsize();
    if (dbsize !== 0) {
      const some = await client.scan('0', 'COUNT', 100);
      throw new DemoError(`the private Redis still holds ${dbsize} keys (${some[1].slice(0, 3).join(', ')})`);
    }
  }
  const patterns = channelKeyPatterns(channel);
  console.log(
    'demo: every file was deleted by its last acknowledgement; removed the channel; ' +
      (privateServer
        ? 'Redis is empty (DBSIZE 0)'
        : `Redis is empty of the demo's keys (SCAN ${patterns.log} and ${patterns.files}: none)`),
  );
}

/**
 * Every SAMPLE_MS, on a connection of its own: Redis's used_memory, and whether the sender's
 * memory guard is waiting for freed memory (its blocking connection, a duplicate of the sender's
 * and so named like it, blocked in XREAD).
 */
/** A CLIENT LIST line of the sender's memory guard, blocked in XREAD. */
const isWaitingSender = (line, senderName) =>
  line.includes(` name=${senderName} `) && /\bflags=\S*b/.test(line) && / cmd=xread\b/.test(line);

export function sampleMemory(client, limit, senderName) {
  const s = { peak: 0, samples: 0, over: 0, waiting: 0, clientList: true, running: true };
  s.loop = (async () => {
    while (s.running) {
      try {
        const [[memErr, memory], [listErr, clients]] = await client.pipeline().info('memory').client('LIST').exec();
        if (memErr) throw memErr;
        const used = parseUsedMemory(memory);
        s.samples++;
        if (used > s.peak) s.peak = used;
        if (used > limit) s.over++;
        if (listErr)
          s.clientList = false; // CLIENT LIST not allowed (ACL)
        else if (
          String(clients)
            .split('\n')
            .some((line) => isWaitingSender(line, senderName))
        )
          s.waiting++;
      } catch {
        // a failed reading is not a sample
      }
      await sleep(SAMPLE_MS);
    }
  })();
  s.stop = async () => {
    s.running = false;
    await s.loop;
  };
  return s;
}
