/**
 * The writer's scripts: claim a key, heartbeat, repair, resume, commit, abort. Every state change
 * of a writer checks its token first, so a writer that lost its lease changes nothing.
 * @internal
 * @module
 */

import { defineScript } from './define.js';
import {
  ALL_ACKNOWLEDGED,
  KIND,
  LEASE,
  LOG_EVENT,
  NEXT_RECORD,
  NOW,
  TRUNCATE,
  VERSION_DETAIL,
  WRONG_TAIL,
} from './lib.js';

/** @internal The reply of {@link CREATE}. `lapseIn`: ms until a silent holder's lease lapses. */
export type CreateReply =
  /** `used`: Redis's used_memory after the file was created, when `trim` is set (a memory limit). */
  | { status: 'ok'; used?: number }
  | { status: 'exists'; state: string }
  | { status: 'busy'; lapseIn: number }
  | { status: 'retry' }
  | { status: 'format'; detail: string };

/**
 * Claim a key for a new writer: refuse when a file exists (unless `overwrite`, and never while a
 * live writer holds it) or a key holds something else; write the hash, the header and a `created`
 * event; apply the TTL. `old` is the chunk stream of the file replaced (or the new one again).
 */
export const CREATE = defineScript<
  'meta' | 'chunks' | 'events' | 'old',
  | 'gen'
  | 'writer'
  | 'overwrite'
  | 'oldGen'
  | 'chunkSize'
  | 'encoding'
  | 'contentType'
  | 'metadata'
  | 'ttl'
  | 'hbi'
  | 'consumers'
  | 'trim',
  CreateReply
>({
  name: 'create',
  keys: ['meta', 'chunks', 'events', 'old'],
  args: [
    'gen',
    'writer',
    'overwrite',
    'oldGen',
    'chunkSize',
    'encoding',
    'contentType',
    'metadata',
    'ttl',
    'hbi',
    'consumers',
    'trim',
  ],
  includes: [NOW, KIND, VERSION_DETAIL, LEASE, LOG_EVENT],
  lua: `
if kind(K.meta) ~= 'none' and kind(K.meta) ~= 'hash' then
  return cjson.encode({status='format', detail='the metadata key holds a ' .. kind(K.meta)})
end
if kind(K.events) ~= 'none' and kind(K.events) ~= 'stream' then
  return cjson.encode({status='format', detail='the events key holds a ' .. kind(K.events)})
end
if redis.call('EXISTS', K.meta) == 1 then
  local cur = redis.call('HMGET', K.meta, M.version, M.gen, M.state, M.heartbeat, M.heartbeatInterval, M.writer)
  -- A retry of this very script (re-sent after a dropped connection) finds its own work done.
  if cur[2] == A.gen and cur[6] == A.writer and cur[3] == S.writing then return cjson.encode({status='ok'}) end
  if cur[1] ~= C.version then return cjson.encode({status='format', detail=version_detail(cur[1])}) end
  if (cur[2] or '') ~= A.oldGen then return cjson.encode({status='retry'}) end
  if cur[3] == S.writing and lease_live(cur[4], cur[5]) then
    return cjson.encode({status='busy', lapseIn=lease_left(cur[4], cur[5])})
  end
  if A.overwrite ~= C.yes then return cjson.encode({status='exists', state=cur[3]}) end
  redis.call('DEL', K.old, K.meta)
  log_event(K.events, E.removed, A.oldGen)
elseif A.oldGen ~= '' then
  return cjson.encode({status='retry'})
end
redis.call('HSET', K.meta, M.version, C.version, M.gen, A.gen, M.state, S.writing, M.chunkSize, A.chunkSize,
  M.size, 0, M.chunks, 0, M.crc32, C.emptyCrc, M.encoding, A.encoding, M.contentType, A.contentType,
  M.metadata, A.metadata, M.created, now, M.updated, now, M.writer, A.writer, M.heartbeat, now,
  M.heartbeatInterval, A.hbi, M.consumers, A.consumers, M.trim, A.trim, M.trimmed, 0, M.dropped, 0)
redis.call('XADD', K.chunks, C.headerId, F.version, C.version, F.gen, A.gen, F.chunkSize, A.chunkSize, F.encoding, A.encoding)
log_event(K.events, E.created, A.gen)
local ttl = tonumber(A.ttl)
if ttl > 0 then
  redis.call('EXPIRE', K.meta, ttl); redis.call('EXPIRE', K.chunks, ttl); redis.call('EXPIRE', K.events, ttl)
else
  redis.call('PERSIST', K.events)
end
-- A writer under a memory limit starts from this reading: its first pieces need not wait for one.
if A.trim == C.yes then
  return cjson.encode({status='ok', used=tonumber(string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)'))})
end
return cjson.encode({status='ok'})
`,
});

/**
 * Heartbeat and progress of a live writer: the acknowledged prefix of whole chunks with its CRC-32,
 * where a resume continues. `held` is false when the writer no longer holds the key.
 */
export const TOUCH = defineScript<'meta', 'writer' | 'size' | 'chunks' | 'crc32', { held: boolean }>({
  name: 'touch',
  keys: ['meta'],
  args: ['writer', 'size', 'chunks', 'crc32'],
  flags: 'allow-oom',
  includes: [NOW],
  lua: `
local cur = redis.call('HMGET', K.meta, M.writer, M.state)
if cur[1] ~= A.writer or cur[2] ~= S.writing then return cjson.encode({held=false}) end
redis.call('HSET', K.meta, M.size, A.size, M.chunks, A.chunks, M.crc32, A.crc32, M.heartbeat, now, M.updated, now)
return cjson.encode({held=true})
`,
});

/** @internal The reply of {@link COMMIT}. */
export type CommitReply = { status: 'ok' } | { status: 'lease' } | { status: 'corrupt'; detail: string };

/**
 * Commit: check that the stream ends with the writer's last piece and holds every piece it wrote,
 * append the end record and mark the file complete (or delete it at once, when its consumers have
 * all acknowledged it already).
 */
export const COMMIT = defineScript<
  'meta' | 'chunks' | 'events',
  'writer' | 'last' | 'pieces' | 'size' | 'chunks' | 'crc32' | 'ttl',
  CommitReply
>({
  name: 'commit',
  keys: ['meta', 'chunks', 'events'],
  args: ['writer', 'last', 'pieces', 'size', 'chunks', 'crc32', 'ttl'],
  includes: [NOW, KIND, WRONG_TAIL, ALL_ACKNOWLEDGED],
  lua: `
local cur = redis.call('HMGET', K.meta, M.writer, M.state, M.dropped, M.gen)
-- A retry of this very script (re-sent after a dropped connection) finds its own work done. It
-- still writes, so that a WAIT after it on a new connection covers the commit.
if cur[1] == A.writer and cur[2] == S.complete then
  redis.call('HSET', K.meta, M.heartbeat, now)
  return cjson.encode({status='ok'})
end
-- Or it finds the file already deleted by its first run, its consumers having all acknowledged it.
if cur[1] == false and kind(K.events) == 'stream' then
  local top = redis.call('XREVRANGE', K.events, '+', '-', 'COUNT', 1)
  if #top > 0 and top[1][2][1] == E.consumed and top[1][2][4] == A.writer then return cjson.encode({status='ok'}) end
end
if cur[1] ~= A.writer or cur[2] ~= S.writing then return cjson.encode({status='lease'}) end
local got = wrong_tail(K.meta, K.chunks, A.last)
if got then return cjson.encode({status='corrupt', detail='expected ' .. A.last .. ' last, found entry ' .. got}) end
-- The header and every piece, less what consumers trimmed: anything less is a gap.
local want = tonumber(A.pieces) + 1 - tonumber(cur[3] or 0)
local len = redis.call('XLEN', K.chunks)
if len ~= want then
  return cjson.encode({status='corrupt', detail='expected ' .. want .. ' entries, the stream holds ' .. len})
end
redis.call('XADD', K.chunks, A.chunks .. '-' .. C.firstPiece, F.size, A.size, F.chunks, A.chunks, F.crc32, A.crc32)
redis.call('HSET', K.meta, M.state, S.complete, M.size, A.size, M.chunks, A.chunks, M.crc32, A.crc32,
  M.updated, now, M.heartbeat, now)
-- Channel receivers that gave the file up while it was being written acknowledged it already:
-- when they all did, nobody is left to read it.
if all_acknowledged(K.meta) then
  redis.call('DEL', K.meta, K.chunks)
  -- Said in the events, for a minute: a retry of this script then knows its first run did it.
  redis.call('XADD', K.events, 'MAXLEN', '~', C.eventsMaxLen, '*', E.consumed, cur[4], M.writer, A.writer)
  redis.call('PEXPIRE', K.events, C.consumedTtl)
  return cjson.encode({status='ok'})
end
local ttl = tonumber(A.ttl)
if ttl > 0 then
  redis.call('EXPIRE', K.meta, ttl); redis.call('EXPIRE', K.chunks, ttl); redis.call('EXPIRE', K.events, ttl)
end
return cjson.encode({status='ok'})
`,
});

/**
 * Abort: append an abort record after the last id the stream gave out, so that following readers
 * learn it in order (or meet the gap before it), and mark the file aborted, recording the committed
 * prefix of whole chunks (where a resume continues). `lost` is '1' when Redis lost acknowledged
 * pieces. `done` is false when the writer no longer held the key.
 */
export const ABORT = defineScript<
  'meta' | 'chunks',
  'writer' | 'reason' | 'size' | 'chunks' | 'crc32' | 'lost',
  { done: boolean }
>({
  name: 'abort',
  keys: ['meta', 'chunks'],
  args: ['writer', 'reason', 'size', 'chunks', 'crc32', 'lost'],
  flags: 'allow-oom',
  includes: [NOW, NEXT_RECORD],
  lua: `
local cur = redis.call('HMGET', K.meta, M.writer, M.state)
if cur[1] ~= A.writer or cur[2] ~= S.writing then return cjson.encode({done=false}) end
if redis.call('EXISTS', K.chunks) == 1 then
  redis.call('XADD', K.chunks, next_record(K.chunks) .. '-' .. C.firstPiece, F.abort, A.reason)
end
redis.call('HSET', K.meta, M.state, S.aborted, M.updated, now, M.size, A.size, M.chunks, A.chunks, M.crc32, A.crc32)
if A.lost == C.yes then redis.call('HSET', K.meta, M.lost, C.yes) end
return cjson.encode({done=true})
`,
});

/** @internal The reply of {@link REPAIR}. */
export type RepairReply = { status: 'ok' } | { status: 'lease' } | { status: 'gap'; top: string };

/**
 * Repair after refused piece writes: delete every entry from piece `from` on (pieces stored after
 * a refused one), so that the writer can send them again in order, and wake readers stopped at the
 * gap. `last` is the writer's last acknowledged piece (or the header): when it is not the stream's
 * last entry after the cut, Redis lost acknowledged pieces, and nothing the writer holds can fill
 * that gap.
 */
export const REPAIR = defineScript<'meta' | 'chunks' | 'events', 'writer' | 'n' | 's' | 'last', RepairReply>({
  name: 'repair',
  keys: ['meta', 'chunks', 'events'],
  args: ['writer', 'n', 's', 'last'],
  flags: 'allow-oom',
  includes: [TRUNCATE, WRONG_TAIL, LOG_EVENT],
  lua: `
local cur = redis.call('HMGET', K.meta, M.writer, M.state, M.gen)
if cur[1] ~= A.writer or cur[2] ~= S.writing then return cjson.encode({status='lease'}) end
truncate(K.chunks, tonumber(A.n), tonumber(A.s))
local got = wrong_tail(K.meta, K.chunks, A.last)
if got then return cjson.encode({status='gap', top=got}) end
log_event(K.events, E.repaired, cur[3])
return cjson.encode({status='ok'})
`,
});

/** @internal The reply of {@link RESUME}. Sizes as stored (decimal text), `last` the id to continue after. */
export type ResumeReply =
  | {
      status: 'ok';
      gen: string;
      chunkSize: string;
      chunks: string;
      size: string;
      crc32: string;
      encoding: string;
      pieces: number;
      last: string;
    }
  | { status: 'missing' }
  | { status: 'busy'; lapseIn: number }
  | { status: 'finished' }
  | { status: 'damaged' }
  | { status: 'retry' }
  | { status: 'format'; detail: string };

/**
 * Resume: take over a file whose writer is gone (state writing with a stale lease, or aborted),
 * cut it back to the whole chunks of the last heartbeat, and hand back what the new writer needs
 * to continue: the layout, the prefix, the number of pieces stored and the id to continue after.
 */
export const RESUME = defineScript<'meta' | 'chunks' | 'events', 'gen' | 'writer' | 'hbi', ResumeReply>({
  name: 'resume',
  keys: ['meta', 'chunks', 'events'],
  args: ['gen', 'writer', 'hbi'],
  includes: [NOW, KIND, VERSION_DETAIL, LEASE, TRUNCATE, LOG_EVENT],
  lua: `
if kind(K.meta) == 'none' then return cjson.encode({status='missing'}) end
if kind(K.meta) ~= 'hash' then return cjson.encode({status='format', detail='the metadata key holds a ' .. kind(K.meta)}) end
local cur = redis.call('HMGET', K.meta, M.version, M.gen, M.state, M.heartbeat, M.heartbeatInterval, M.writer,
  M.chunkSize, M.chunks, M.size, M.crc32, M.encoding, M.dropped, M.lost)
if cur[1] ~= C.version then return cjson.encode({status='format', detail=version_detail(cur[1])}) end
if cur[2] ~= A.gen then return cjson.encode({status='retry'}) end
local mine = cur[6] == A.writer and cur[3] == S.writing
if not mine then
  if cur[3] == S.complete then return cjson.encode({status='finished'}) end
  if cur[3] == S.writing and lease_live(cur[4], cur[5]) then
    return cjson.encode({status='busy', lapseIn=lease_left(cur[4], cur[5])})
  end
  -- Redis lost acknowledged pieces: what the last heartbeat recorded may lie past the gap.
  if cur[13] == C.yes then return cjson.encode({status='damaged'}) end
  if redis.call('EXISTS', K.chunks) == 0 then return cjson.encode({status='format', detail='its chunk stream is gone'}) end
  truncate(K.chunks, tonumber(cur[8]), C.firstPiece)
  redis.call('HSET', K.meta, M.state, S.writing, M.writer, A.writer, M.heartbeat, now, M.heartbeatInterval, A.hbi, M.updated, now)
  log_event(K.events, E.resumed, cur[2], cur[8])
end
local top = redis.call('XREVRANGE', K.chunks, '+', '-', 'COUNT', 1)
-- Consumers may have trimmed every entry: the writer continues after the last trimmed chunk.
local last = id_before(tonumber(cur[8]), C.firstPiece)
if #top > 0 then last = top[1][1] end
local pieces = redis.call('XLEN', K.chunks) + tonumber(cur[12] or 0) - 1
return cjson.encode({status='ok', gen=cur[2], chunkSize=cur[7], chunks=cur[8], size=cur[9], crc32=cur[10],
  encoding=cur[11], pieces=pieces, last=last})
`,
});
