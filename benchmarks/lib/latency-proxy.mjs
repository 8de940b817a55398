// The benchmark's side of the delaying proxy (delay-proxy.mjs, a process of its own): start it in
// front of a Redis server on loopback, calibrate it so that a PING through it takes a target round
// trip time, and count the request bursts a client sends through it.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { trackChild } from './cleanup.mjs';
import { median, now, percentile, round } from './util.mjs';

const PROXY = fileURLToPath(new URL('./delay-proxy.mjs', import.meta.url));

/**
 * Start a delaying proxy in front of the server at `url` (`redis://host:port`, plain TCP only:
 * the proxy forwards bytes and sees none of the protocol). Its delay is 0 until `set()`.
 * @returns {Promise<{
 *   port: number,
 *   url: string,
 *   set: (oneWayMs: number, gapMs: number) => Promise<object>,
 *   mark: () => Promise<void>,
 *   count: () => Promise<{ bursts: number, exchanges: number, requestBytes: number, replyBytes: number }>,
 *   stats: () => Promise<object>,
 *   stop: () => Promise<void>,
 * }>} `url` is `url` with the proxy's host and port (user, password and db kept).
 */
export async function startDelayProxy(url) {
  const target = new URL(url);
  if (target.protocol !== 'redis:') {
    throw new Error(`the delaying proxy forwards plain TCP only, not ${target.protocol}`);
  }
  const child = fork(PROXY, [target.hostname || '127.0.0.1', target.port || '6379'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  trackChild(child, 'delay proxy');
  const pending = new Map();
  let nextId = 0;
  let gone;
  const listening = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m?.type === 'listening') return resolve(m.port);
      const p = pending.get(m?.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`delay proxy: ${m.error}`));
      else p.resolve(m);
    });
    child.once('exit', (code, signal) => {
      gone = new Error(`the delay proxy exited (${code ?? signal})`);
      reject(gone);
      for (const p of pending.values()) p.reject(gone);
      pending.clear();
    });
  });
  const port = await listening;
  const request = (type, fields = {}) =>
    new Promise((resolve, reject) => {
      if (gone) return reject(gone);
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, type, ...fields });
    });
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return {
    port,
    url: proxied.href,
    set: (oneWayMs, gapMs) => request('set', { oneWayMs, gapMs }),
    mark: () => request('mark').then(() => {}),
    count: () => request('count'),
    stats: () => request('stats'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}

/** PING round trips through `client`, one after another, in ms. */
export async function pingTimes(client, count) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = now();
    await client.ping();
    times.push(now() - t0);
  }
  return times;
}

export function pingSummary(times) {
  return {
    p50: round(median(times), 3),
    p10: round(percentile(times, 10), 3),
    p90: round(percentile(times, 90), 3),
    min: round(Math.min(...times), 3),
    max: round(Math.max(...times), 3),
    samples: times.length,
  };
}

/**
 * Set the proxy's one-way delay so that the median PING through `client` (a client connected
 * through the proxy) takes `rttMs`: start from half of what the proxy must add to the PING without
 * a delay, then correct by half the error, until the median is within 2% (or 0.02 ms) of the target
 * or `rounds` tries are done; the closest try wins. The burst gap is set to half the RTT: a request
 * sent after a reply arrives at least a round trip after the one before it, while the requests a
 * client sends in one go may be split by its own processing, which at an RTT of 1 ms a quarter of
 * it (0.25 ms) did not always cover on a busy machine.
 * @returns {Promise<{ rttMs: number, oneWayMs: number, gapMs: number, pingWithoutDelay: object, ping: object }>}
 */
export async function calibrate(proxy, client, rttMs, { pings = 40, rounds = 6, log } = {}) {
  const gapMs = rttMs / 2;
  await proxy.set(0, gapMs);
  const base = pingSummary(await pingTimes(client, pings));
  let oneWayMs = Math.max(0, (rttMs - base.p50) / 2);
  let best;
  for (let r = 0; r < rounds; r++) {
    await proxy.set(oneWayMs, gapMs);
    await pingTimes(client, 3); // the chunks sent at the old delay are out of the way
    const ping = pingSummary(await pingTimes(client, pings));
    const error = Math.abs(ping.p50 - rttMs);
    log?.(`  calibration for RTT ${rttMs} ms: one-way delay ${round(oneWayMs, 3)} ms -> PING p50 ${ping.p50} ms`);
    if (!best || error < best.error) best = { oneWayMs, ping, error };
    if (error <= Math.max(0.02, rttMs * 0.02)) break;
    oneWayMs = Math.max(0, oneWayMs + (rttMs - ping.p50) / 2);
  }
  await proxy.set(best.oneWayMs, gapMs);
  return { rttMs, oneWayMs: round(best.oneWayMs, 4), gapMs, pingWithoutDelay: base, ping: best.ping };
}
