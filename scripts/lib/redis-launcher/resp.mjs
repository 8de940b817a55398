// Redis commands over a plain socket to 127.0.0.1, for the launcher's readiness checks and admin
// commands: no client library, no retries, no reconnects. It reads the replies those commands
// give (simple strings, errors, integers, bulk strings, arrays).

import { connect } from 'node:net';

/** RESP encoding of one command. */
function encode(args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * One reply at `pos` in `buf`: `[reply, next position]`, or undefined while it is incomplete.
 * Arrays (CLUSTER SLOTS) come as `{ type: 'array', items }`, every other reply with its text.
 */
function parseReply(buf, pos) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol === -1) return undefined;
  const head = buf.toString('latin1', pos, eol);
  const kind = head[0];
  if (kind === '+' || kind === '-' || kind === ':') {
    return [{ type: kind === '-' ? 'error' : 'simple', text: head.slice(1) }, eol + 2];
  }
  if (kind === '$') {
    const len = Number.parseInt(head.slice(1), 10);
    if (len < 0) return [{ type: 'bulk', text: '' }, eol + 2];
    if (buf.length < eol + 2 + len + 2) return undefined;
    return [{ type: 'bulk', text: buf.toString('utf8', eol + 2, eol + 2 + len) }, eol + 2 + len + 2];
  }
  if (kind === '*') {
    const items = [];
    let next = eol + 2;
    for (let i = Number.parseInt(head.slice(1), 10); i > 0; i--) {
      const parsed = parseReply(buf, next);
      if (parsed === undefined) return undefined;
      items.push(parsed[0]);
      next = parsed[1];
    }
    return [{ type: 'array', items, text: '' }, next];
  }
  return [{ type: 'error', text: `unexpected reply ${JSON.stringify(head)}` }, buf.length];
}

/**
 * The first `count` replies in `buf`, or undefined while they are incomplete.
 *
 * @returns {{ type: 'simple' | 'error' | 'bulk' | 'array', text: string, items?: object[] }[] | undefined}
 */
function parseReplies(buf, count) {
  const replies = [];
  let pos = 0;
  while (replies.length < count) {
    const parsed = parseReply(buf, pos);
    if (parsed === undefined) return undefined;
    replies.push(parsed[0]);
    pos = parsed[1];
  }
  return replies;
}

/**
 * Send `commands` to 127.0.0.1:`port` in one write and resolve with their replies (fewer when one
 * could not be read). Rejects when the connection fails, closes or stays silent for `timeoutMs`.
 */
export function exchange(port, commands, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    let done = false;
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (err, replies) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`127.0.0.1:${port} did not answer in ${timeoutMs} ms`)));
    socket.once('error', (err) => finish(err));
    socket.once('close', () => finish(new Error(`127.0.0.1:${port} closed the connection`)));
    socket.once('connect', () => socket.write(commands.map(encode).join('')));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      const replies = parseReplies(data, commands.length);
      if (replies) finish(undefined, replies);
    });
  });
}

/**
 * Run `args` on 127.0.0.1:`port` (after AUTH when `password` is given) and resolve with the text
 * of its reply; an error reply rejects.
 *
 * @param {number} port
 * @param {string[]} args
 * @param {{ password?: string }} [options]
 * @returns {Promise<string>}
 */
export async function command(port, args, { password } = {}) {
  const commands = password === undefined ? [args] : [['AUTH', password], args];
  const replies = await exchange(port, commands);
  const failed = replies.find((r) => r.type === 'error');
  if (failed || replies.length < commands.length) {
    throw new Error(`${args.join(' ')} on 127.0.0.1:${port} failed: ${failed?.text ?? 'no reply'}`);
  }
  return replies[replies.length - 1].text;
}
