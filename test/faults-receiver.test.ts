/**
 * A channel's receiver whose connections are killed while it waits for the next announcement
 * (its blocking XREADGROUP on a connection of its own) reads again on a new connection and gets
 * every file once: a reply the kill lost is read again from the receiver's pending entries.
 */
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { closeChannel, receiveFiles, sendFiles } from '../src/index.js';
import { blockedIn, connectSubject, uniqueConnectionName } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { useOwnServer } from './helpers/own-server.js';
import { killAll, receiver } from './helpers/processes.js';

const own = useOwnServer();
afterAll(killAll);

/** Kill every connection named `name`. Returns how many. */
async function killNamed(name: string): Promise<number> {
  const list = (await own.admin.client('LIST')) as string;
  let killed = 0;
  for (const line of list.split('\n')) {
    const id = /\bid=(\d+)/.exec(line)?.[1];
    if (id && line.includes(` name=${name} `))
      killed += Number(await own.admin.client('KILL', 'ID', id).catch(() => 0));
  }
  return killed;
}

describe('a receiver whose connections are killed while it waits', () => {
  it('reads again on a new connection and gets every file once', async () => {
    const senderClient = connectSubject(own.server.url);
    const receiverClient = connectSubject(own.server.url, { connectionName: 'receiver' });
    const channel = 'killed-while-waiting';
    const got: string[] = [];
    const receiving = (async () => {
      for await (const file of receiveFiles(receiverClient, channel, { consumer: 'r' })) {
        const parts: Buffer[] = [];
        for await (const part of file.stream) parts.push(part as Buffer);
        got.push(`${file.name}=${Buffer.concat(parts).toString()}`);
        await file.ack();
      }
    })();
    const sent: string[] = [];
    for (let round = 0; round < 3; round++) {
      // Blocked in its wait for the next announcement, then cut off.
      await eventually(async () => (await blockedIn(own.admin, 'receiver', 'xreadgroup')) === 1, 'the receiver waits');
      expect(await killNamed('receiver')).toBeGreaterThan(0);
      const name = `file-${round}`;
      await sendFiles(senderClient, channel, [{ name, stream: Readable.from([Buffer.from(`bytes of ${round}`)]) }]);
      sent.push(`${name}=bytes of ${round}`);
      await eventually(() => got.length === sent.length, `${name} is received`);
      expect(got).toEqual(sent);
    }
    await closeChannel(senderClient, channel);
    await receiving;
    expect(got).toEqual(sent);
  });
});

describe('a receiver left early', () => {
  it('break while it waits for the next file: its connection closes, none opens again, and the process exits', async () => {
    const name = uniqueConnectionName('left-early');
    const channel = 'left-early';
    const p = receiver(own.server.url, channel, 'r', { name, stopAfter: 1 });
    await p.waitFor((e) => e.event === 'ready', 'ready');
    await sendFiles(connectSubject(own.server.url), channel, [
      { name: 'a.txt', stream: Readable.from([Buffer.from('a')]) },
    ]);
    await p.waitFor((e) => e.event === 'stopped', 'stopped');
    // It exits by itself once it has closed its own client: nothing of the package holds it.
    expect((await p.exited).code).toBe(0);
    await eventually(async () => (await named(name)) === 0, 'its connections to be gone from the server');
  });
});

/** How many connections named `name` the server has. */
async function named(name: string): Promise<number> {
  const list = (await own.admin.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}
