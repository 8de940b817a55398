/**
 * The reader's script: open a file in one round trip, its hash and the first entries of its
 * chunk stream together.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';
import { defineScript } from './define.js';

/** @internal Entries as XRANGE returns them in buffer mode: `[id, [field, value, …]]`. */
export type BinaryEntry = [Buffer, Buffer[]];

/**
 * @internal The reply of {@link OPEN}. `format`: a key holds another type (the caller reads
 * again command by command, which says what is wrong). `first`: the first entries of the chunk
 * stream from the read's start (at most `count`), when the file is being written or complete.
 */
export type OpenReply =
  | { status: 'format' }
  | {
      status: 'ok';
      lastEvent: string;
      meta: Record<string, string>;
      ttl: number;
      time: string[];
      first: { entries: BinaryEntry[]; count: number } | undefined;
    };

/**
 * Open: the last event's id, the hash, its TTL, the server's time, and the first `count` entries
 * of the chunk stream of the generation the hash names, from chunk `start / chunkSize` on, where
 * `count` is `readAhead`, fewer for large chunks (at least 1, at most `readAheadBytes` of chunks,
 * and at most `guardedBytes` for a file written under a memory limit): the reader's batch; for a
 * range that ends at byte `last` before the file does (`last` is -1 for a read to the end), no
 * more than the chunks up to the one holding `last`. The entries come for a file being written
 * and for a complete file of at most `count` chunks (read whole in this one round trip), not for a
 * larger complete file. All
 * read in one step, so that the entries belong to the hash read with them. Pieces are bytes, which
 * JSON cannot carry: the reply is an array, `{1, last event or false, HGETALL, TTL, TIME[,
 * entries, count]}`, or `{0}` for a key of another type.
 *
 * The chunk stream's name is known only once the hash is read: the script builds it from
 * `chunks` (the name of the chunk stream without its generation) and the hash's `gen`. It is the
 * one key a script touches without declaring it; it shares the file's hash tag, so it is on the
 * same cluster slot as the declared keys (Redis checks that), and under the same ACL key pattern.
 * Run with `EVALSHA_RO`, so that a user with read access alone may run it.
 */
export const OPEN = defineScript<
  'meta' | 'events',
  'chunks' | 'start' | 'last' | 'readAhead' | 'readAheadBytes' | 'guardedBytes',
  OpenReply
>({
  name: 'open',
  keys: ['meta', 'events'],
  args: ['chunks', 'start', 'last', 'readAhead', 'readAheadBytes', 'guardedBytes'],
  flags: 'no-writes,allow-oom',
  readOnly: true,
  lua: `
-- pcall, not TYPE: a reader's ACL rule grants the commands it reads with, not TYPE.
local top = redis.pcall('XREVRANGE', K.events, '+', '-', 'COUNT', 1)
local hash = redis.pcall('HGETALL', K.meta)
if top.err or hash.err then return {0} end
local reply = {1, false, hash, redis.call('TTL', K.meta), redis.call('TIME')}
if #top > 0 then reply[2] = top[1][1] end
local cur = redis.call('HMGET', K.meta, M.gen, M.state, M.chunkSize, M.chunks, M.trim, M.size)
local chunkSize = tonumber(cur[3])
local count = 0
if chunkSize and chunkSize >= 1 then
  count = math.max(1, math.min(tonumber(A.readAhead), math.floor(tonumber(A.readAheadBytes) / chunkSize)))
  -- Written under a memory limit: Redis holds this reply until the reader takes it, and the
  -- writer's guard counts on replies of guardedBytes (at least one chunk).
  if cur[5] == C.yes then
    count = math.min(count, math.max(1, math.floor(tonumber(A.guardedBytes) / chunkSize)))
  end
end
-- A complete file of more than one batch: no entries. Pieces pass through Lua as copies (several
-- times the Redis CPU of an XRANGE of the same entries), and the reader asks for the first
-- batches with plain XRANGEs as soon as it has the generation.
local whole = cur[2] == S.writing or (cur[2] == S.complete and (tonumber(cur[4]) or 0) <= count)
if cur[1] and whole and count >= 1 then
  local first = math.floor(tonumber(A.start) / chunkSize)
  -- A range read that ends before the file does: no more chunks than the range covers (and the
  -- header before chunk 0), counted as the reader counts them.
  local last = tonumber(A.last)
  if last >= 0 and not (cur[2] == S.complete and last >= (tonumber(cur[6]) or 0) - 1) then
    local need = math.floor(last / chunkSize) - first + 1
    if first == 0 then need = need + 1 end
    count = math.max(1, math.min(count, need))
  end
  local from = '-'
  if first > 0 then from = '(' .. string.format('%d', first - 1) .. '-' .. C.maxSeq end
  local entries = redis.pcall('XRANGE', A.chunks .. cur[1], from, '+', 'COUNT', count)
  -- Missing or of another type: the read finds that out as it would without this batch.
  if not entries.err and #entries > 0 then
    reply[6] = entries
    reply[7] = count
  end
end
return reply
`,
  decodeBinary: (raw) => {
    const r = raw as unknown[];
    if (Number(r[0]) !== 1) return { status: 'format' };
    const flat = r[2] as Buffer[];
    const meta: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) meta[flat[i]!.toString()] = flat[i + 1]!.toString();
    return {
      status: 'ok',
      lastEvent: r[1] == null ? '0-0' : String(r[1]),
      meta,
      ttl: Number(r[3]),
      time: (r[4] as Buffer[]).map(String),
      first: r[5] === undefined ? undefined : { entries: r[5] as BinaryEntry[], count: Number(r[6]) },
    };
  },
});
