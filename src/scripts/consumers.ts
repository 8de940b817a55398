/**
 * Scripts of readers and consumers: acknowledge a file, report a position and trim what every
 * consumer has passed, join a trimmed file, mark a dead writer's file aborted; and the memory use
 * of the node that holds a file.
 * @internal
 * @module
 */

import { defineScript } from './define.js';
import { ALL_ACKNOWLEDGED, LEASE, NEXT_RECORD, NOW, TRIM_CONSUMED } from './lib.js';

/** @internal The reply of {@link ACK}; `trimmed`: chunks trimmed now. */
export type AckReply =
  | { status: 'acked'; count: number; trimmed: number }
  | { status: 'deleted'; count: number; trim: boolean }
  | { status: 'missing' }
  | { status: 'unfinished'; state: string; trimmed: number };

/** The acknowledgement, as a Lua function `ack()` that returns the reply. */
const ACK_FUNCTION = `
local function ack()
  local cur = redis.call('HMGET', K.meta, M.gen, M.state, M.trim)
  if cur[1] ~= A.gen then return cjson.encode({status='missing'}) end
  local trimmed = 0
  if cur[3] == C.yes then
    redis.call('HSET', K.meta, M.posPrefix .. A.consumer, C.done)
    trimmed = trim_consumed(K.meta, K.chunks)
  end
  if cur[2] ~= S.complete and A.any ~= C.yes then
    return cjson.encode({status='unfinished', state=tostring(cur[2]), trimmed=trimmed})
  end
  if redis.call('HSETNX', K.meta, M.ackPrefix .. A.consumer, now) == 1 then redis.call('HINCRBY', K.meta, M.acks, 1) end
  local count = tonumber(redis.call('HGET', K.meta, M.acks))
  if cur[2] ~= S.writing and all_acknowledged(K.meta) then
    redis.call('DEL', K.meta, K.chunks, K.events)
    return cjson.encode({status='deleted', count=count, trim=cur[3] == C.yes})
  end
  return cjson.encode({status='acked', count=count, trimmed=trimmed})
end
`;

/**
 * A consumer acknowledges a complete file, once per name; when the writer's `consumers` are all
 * done, every key of the file is deleted. A channel receiver (`any` '1') acknowledges a file in
 * any state once it is done with it: an aborted file goes once every consumer has moved past it,
 * one still being written goes when it is committed (never under a live writer). Whatever the
 * state, the consumer's position no longer holds back trimming.
 */
export const ACK = defineScript<'meta' | 'chunks' | 'events', 'gen' | 'consumer' | 'any', AckReply>({
  name: 'ack',
  keys: ['meta', 'chunks', 'events'],
  args: ['gen', 'consumer', 'any'],
  flags: 'allow-oom',
  includes: [NOW, ALL_ACKNOWLEDGED, TRIM_CONSUMED, ACK_FUNCTION],
  lua: `return ack()`,
});

/**
 * {@link ACK} for a channel receiver, then the acknowledgement of the file's announcement in the
 * channel's log (`XACK log group entry`) in the same step: one round trip, and never the log's
 * without the file's. The log is not on the file's cluster slot: only for a single server.
 */
export const ACK_ANNOUNCED = defineScript<
  'meta' | 'chunks' | 'events' | 'log',
  'gen' | 'consumer' | 'any' | 'group' | 'entry',
  AckReply
>({
  name: 'ack-announced',
  keys: ['meta', 'chunks', 'events', 'log'],
  args: ['gen', 'consumer', 'any', 'group', 'entry'],
  flags: 'allow-oom',
  includes: [NOW, ALL_ACKNOWLEDGED, TRIM_CONSUMED, ACK_FUNCTION],
  lua: `
local reply = ack()
redis.call('XACK', K.log, A.group, A.entry)
return reply
`,
});

/**
 * A consumer reports how far it has consumed (chunks); chunks every consumer has passed are
 * trimmed, when the writer allowed it (`maxRedisMemory`) and its limit has held it back. The
 * writer itself, held back by its memory limit, trims with an empty consumer name, which also
 * marks the file as under pressure. `trimmed`: chunks trimmed now.
 */
export const TRIM = defineScript<'meta' | 'chunks', 'gen' | 'consumer' | 'position', { trimmed: number }>({
  name: 'trim',
  keys: ['meta', 'chunks'],
  args: ['gen', 'consumer', 'position'],
  flags: 'allow-oom',
  includes: [TRIM_CONSUMED],
  lua: `
local cur = redis.call('HMGET', K.meta, M.gen, M.trim)
if cur[1] ~= A.gen or cur[2] ~= C.yes then return cjson.encode({trimmed=0}) end
if A.consumer ~= '' then
  redis.call('HSET', K.meta, M.posPrefix .. A.consumer, A.position)
else
  -- The writer, held back by its memory limit: from now on consumers trim what they all consumed.
  redis.call('HSET', K.meta, M.pressure, C.yes)
end
return cjson.encode({trimmed=trim_consumed(K.meta, K.chunks)})
`,
});

/** @internal The reply of {@link JOIN}. */
export type JoinReply = { status: 'ok'; chunk: number } | { status: 'gone'; trimmed: number } | { status: 'missing' };

/**
 * A consumer starts reading a file whose consumers trim what they all passed: it records the chunk
 * it starts at as its position, or learns that what it needs is gone. A consumer that restarts
 * (`restart` '1') and finds the head trimmed starts at the first chunk still held, when its own
 * recorded position shows that it had consumed everything before it.
 */
export const JOIN = defineScript<'meta', 'gen' | 'consumer' | 'first' | 'restart', JoinReply>({
  name: 'join',
  keys: ['meta'],
  args: ['gen', 'consumer', 'first', 'restart'],
  flags: 'allow-oom',
  lua: `
local cur = redis.call('HMGET', K.meta, M.gen, M.trim, M.trimmed, M.posPrefix .. A.consumer)
if cur[1] ~= A.gen then return cjson.encode({status='missing'}) end
local want = tonumber(A.first)
if cur[2] ~= C.yes then return cjson.encode({status='ok', chunk=want}) end
local trimmed = tonumber(cur[3] or 0)
if want < trimmed then
  local had = cur[4] == C.done or (cur[4] and tonumber(cur[4]) >= trimmed)
  if A.restart ~= C.yes or not had then return cjson.encode({status='gone', trimmed=trimmed}) end
  want = trimmed
end
redis.call('HSET', K.meta, M.posPrefix .. A.consumer, want)
return cjson.encode({status='ok', chunk=want})
`,
});

/** @internal The reply of {@link ABANDON}. */
export type AbandonReply =
  | { status: 'marked' }
  | { status: 'alive' }
  | { status: 'settled'; state: string }
  | { status: 'missing' };

/**
 * A reader found the writer silent: if its lease has lapsed by the server's clock and the file is
 * still being written, mark it aborted, with an abort record, so that every reader learns it at
 * once. The sizes of the last heartbeat stay, so that `resume` can still continue the file.
 */
export const ABANDON = defineScript<'meta' | 'chunks', 'gen' | 'reason', AbandonReply>({
  name: 'abandon',
  keys: ['meta', 'chunks'],
  args: ['gen', 'reason'],
  flags: 'allow-oom',
  includes: [NOW, LEASE, NEXT_RECORD],
  lua: `
local cur = redis.call('HMGET', K.meta, M.gen, M.state, M.heartbeat, M.heartbeatInterval)
if cur[1] ~= A.gen then return cjson.encode({status='missing'}) end
if cur[2] ~= S.writing then return cjson.encode({status='settled', state=tostring(cur[2])}) end
if lease_live(cur[3], cur[4]) then return cjson.encode({status='alive'}) end
if redis.call('EXISTS', K.chunks) == 1 then
  redis.call('XADD', K.chunks, next_record(K.chunks) .. '-' .. C.firstPiece, F.abort, A.reason)
end
redis.call('HSET', K.meta, M.state, S.aborted, M.updated, now)
return cjson.encode({status='marked'})
`,
});

/**
 * Redis's `used_memory`, read on the node that holds the file: a script rather than INFO because a
 * cluster client routes a script by its key.
 */
export const USED_MEMORY = defineScript<'meta', never, { used: number }>({
  name: 'used-memory',
  keys: ['meta'],
  args: [],
  flags: 'no-writes,allow-oom',
  lua: `return cjson.encode({used=tonumber(string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)'))})`,
});
