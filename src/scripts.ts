/**
 * Server-side scripts. Every state change that must be atomic (claiming a key, committing the end
 * record, aborting, removing) runs as one Lua script, so that two clients can never interleave
 * half-done changes. Scripts declare every key they touch (cluster- and ACL-safe) and take times
 * from the server's clock (`TIME`), so that lease expiry does not depend on client clocks.
 *
 * Chunk writes are plain `XADD`s, not scripts: copying every chunk into Lua would cost throughput,
 * and the explicit entry id already makes a retried write harmless.
 * @internal
 * @module
 */

import { createHash } from 'node:crypto';
import type { RedisClient } from './client.js';

/** @internal A Lua script with its SHA1, run with EVALSHA and loaded on demand. */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string, flags?: 'allow-oom' | 'no-writes,allow-oom'): Script {
  // The shebang makes Redis refuse a script that may write as a whole while it is out of memory,
  // instead of failing half-way through it. Scripts that only record state or free memory may run
  // then, so that heartbeats, aborts and repairs still work when chunk writes are refused.
  const full = `#!lua${flags ? ` flags=${flags}` : ''}\n${source}`;
  return { name, source: full, sha: createHash('sha1').update(full).digest('hex') };
}

// Shared Lua prelude: server time in ms, and a type check that turns a foreign key into a clear
// error instead of a WRONGTYPE half-way through a script (scripts are not rolled back).
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function kind(k) local r = redis.call('TYPE', k); if type(r) == 'table' then return r.ok end; return r end
-- For scripts on a whole file: nil when meta holds a file of this format version and generation,
-- else the reply to give (0: no file; 'retry': the generation changed; 'format': not ours).
local function check_file(meta, version, gen)
  if kind(meta) == 'none' then return 0 end
  if kind(meta) ~= 'hash' then return {'format', 'the metadata key holds a ' .. kind(meta)} end
  local cur = redis.call('HMGET', meta, 'v', 'gen')
  if cur[1] ~= version then return {'format', 'stored in format version ' .. tostring(cur[1])} end
  if cur[2] ~= gen then return {'retry'} end
  return nil
end
-- Delete every entry from record n on, and move the stream's last id back before it, so that
-- record n can be written again.
local function truncate(stream, n)
  while true do
    local rest = redis.call('XRANGE', stream, n .. '-2', '+', 'COUNT', 500)
    if #rest == 0 then break end
    local ids = {}
    for i, e in ipairs(rest) do ids[i] = e[1] end
    redis.call('XDEL', stream, unpack(ids))
  end
  local last = '0-1'
  if n > 0 then last = (n - 1) .. '-2' end
  if redis.call('EXISTS', stream) == 1 then redis.call('XSETID', stream, last) end
end
-- The number of chunks stored, trimmed ones included: where an abort record goes. Consumers may
-- have trimmed every entry (the header too): the stream is then empty, and 'trimmed' chunks came
-- before.
-- Chunks 0 to n-1 were all stored: nil when chunk n-1 is the stream's last entry (or consumers
-- trimmed it), else the id of the last entry ('nothing' when there is none).
local function wrong_tail(meta, stream, n)
  if n <= tonumber(redis.call('HGET', meta, 'trimmed') or '0') then return nil end
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last == 0 then return 'nothing' end
  if last[1][1] == (n - 1) .. '-2' then return nil end
  return last[1][1]
end
-- The number of the record after the last id the stream ever gave out, where an abort record goes.
-- Not after its last entry: entries that a repair deleted, that consumers trimmed, or that Redis
-- lost in a failover leave their ids behind, and a reader must meet the gap they left rather than
-- an abort record in their place.
local function next_record(stream)
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local ms, seq = string.match(info[i + 1], '^(%d+)-(%d+)$')
      if seq == '2' then return tonumber(ms) + 1 end
    end
  end
  return 0
end
local function stored_chunks(meta, stream)
  local n = tonumber(redis.call('HGET', meta, 'trimmed') or '0')
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last > 0 and last[1][1] ~= '0-1' then
    n = math.max(n, tonumber(string.match(last[1][1], '^(%d+)-')) + 1)
    -- An end or abort record is not a chunk.
    if last[1][2][1] ~= 'd' then n = n - 1 end
  end
  return n
end
-- Whether the writer's consumers have all acknowledged the file: that many distinct names, or
-- every name given.
local function all_acknowledged(meta)
  local consumers = redis.call('HGET', meta, 'consumers')
  if not consumers or consumers == '' then return false end
  local want = cjson.decode(consumers)
  if type(want) == 'number' then return tonumber(redis.call('HGET', meta, 'acks') or '0') >= want end
  for _, name in ipairs(want) do
    if redis.call('HEXISTS', meta, 'ack:' .. name) == 0 then return false end
  end
  return true
end
-- Trim the chunks that every consumer has consumed, when the writer allowed it. A consumer's
-- position ('pos:<name>') is the number of chunks it consumed, or 'done' once it acknowledged
-- the file (it needs nothing more of it). With a count of consumers, trimming starts once that
-- many have a position; with names, once all of them have. Never past the chunks stored.
-- Returns the number of chunks trimmed now.
local function trim_consumed(meta, chunks)
  local cur = redis.call('HMGET', meta, 'trim', 'consumers', 'trimmed')
  if cur[1] ~= '1' or not cur[2] or cur[2] == '' then return 0 end
  local want = cjson.decode(cur[2])
  local least = nil
  local function consider(p)
    if p ~= 'done' then
      p = tonumber(p)
      if least == nil or p < least then least = p end
    end
  end
  if type(want) == 'number' then
    local fields = redis.call('HGETALL', meta)
    local seen = 0
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 4) == 'pos:' then
        seen = seen + 1
        consider(fields[i + 1])
      end
    end
    if seen < want then return 0 end
  else
    for _, name in ipairs(want) do consider(redis.call('HGET', meta, 'pos:' .. name) or '0') end
  end
  local stored = stored_chunks(meta, chunks)
  if least == nil or least > stored then least = stored end
  local done = tonumber(cur[3] or '0')
  if least <= done then return 0 end
  redis.call('XTRIM', chunks, 'MINID', least .. '-2')
  redis.call('HSET', meta, 'trimmed', least)
  return least - done
end
`;

/**
 * Claim a key for a new writer.
 * KEYS: meta, events, new chunk stream, old chunk stream (or the new one again when none)
 * ARGV: version, gen, writer, overwrite, oldGen, chunkSize, encoding, contentType, metadata, ttl(s), hbi(ms),
 * consumers (JSON: a count or a list of names, or empty), trim ('1' to let consumers trim read chunks)
 * Returns {'ok', now} | {'exists', state} | {'busy'} | {'retry'} | {'format', detail}
 */
export const CREATE = script(
  'create',
  `${PRELUDE}
local meta, events, chunks, old = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if kind(meta) ~= 'none' and kind(meta) ~= 'hash' then return {'format', 'the metadata key holds a ' .. kind(meta)} end
if kind(events) ~= 'none' and kind(events) ~= 'stream' then return {'format', 'the events key holds a ' .. kind(events)} end
if redis.call('EXISTS', meta) == 1 then
  local cur = redis.call('HMGET', meta, 'v', 'gen', 'state', 'hb', 'hbi', 'writer')
  -- A retry of this very script (re-sent after a dropped connection) finds its own work done.
  if cur[2] == ARGV[2] and cur[6] == ARGV[3] and cur[3] == 'writing' then return {'ok', tostring(now)} end
  if cur[1] ~= ARGV[1] then return {'format', 'stored in format version ' .. tostring(cur[1])} end
  if cur[2] ~= ARGV[5] then return {'retry'} end
  if cur[3] == 'writing' and now - tonumber(cur[4] or 0) <= 3 * tonumber(cur[5] or 0) then return {'busy'} end
  if ARGV[4] ~= '1' then return {'exists', cur[3]} end
  redis.call('DEL', old, meta)
  redis.call('XADD', events, 'MAXLEN', '~', 16, '*', 'removed', ARGV[5])
elseif ARGV[5] ~= '' then
  return {'retry'}
end
redis.call('HSET', meta, 'v', ARGV[1], 'gen', ARGV[2], 'state', 'writing', 'chunkSize', ARGV[6],
  'size', 0, 'chunks', 0, 'encoding', ARGV[7], 'contentType', ARGV[8], 'metadata', ARGV[9],
  'created', now, 'updated', now, 'writer', ARGV[3], 'hb', now, 'hbi', ARGV[11], 'consumers', ARGV[12],
  'trim', ARGV[13], 'trimmed', 0)
redis.call('XADD', chunks, '0-1', 'rfs', ARGV[1], 'gen', ARGV[2], 'chunkSize', ARGV[6], 'encoding', ARGV[7])
redis.call('XADD', events, 'MAXLEN', '~', 16, '*', 'created', ARGV[2])
local ttl = tonumber(ARGV[10])
if ttl > 0 then
  redis.call('EXPIRE', meta, ttl); redis.call('EXPIRE', chunks, ttl); redis.call('EXPIRE', events, ttl)
else
  redis.call('PERSIST', events)
end
return {'ok', tostring(now)}
`,
);

/**
 * Heartbeat and progress of a live writer; fails when the writer no longer holds the key. The
 * progress is the acknowledged prefix of whole chunks with its CRC-32: where a resume continues.
 * KEYS: meta. ARGV: writer, size, chunks, crc32. Returns 1, or 0 when the lease is lost.
 */
export const TOUCH = script(
  'touch',
  `${PRELUDE}
local cur = redis.call('HMGET', KEYS[1], 'writer', 'state')
if cur[1] ~= ARGV[1] or cur[2] ~= 'writing' then return 0 end
redis.call('HSET', KEYS[1], 'size', ARGV[2], 'chunks', ARGV[3], 'crc32', ARGV[4], 'hb', now, 'updated', now)
return 1
`,
  'allow-oom',
);

/**
 * Commit: append the end record after the last chunk and mark the file complete (or delete it at
 * once, when its consumers have all acknowledged it already).
 * KEYS: meta, chunks, events. ARGV: writer, chunks, size, crc32, ttl(s).
 * Returns {'ok'} | {'lost'} | {'corrupt', lastId}
 */
export const COMMIT = script(
  'commit',
  `${PRELUDE}
local meta, chunks, events = KEYS[1], KEYS[2], KEYS[3]
local cur = redis.call('HMGET', meta, 'writer', 'state')
-- A retry of this very script (re-sent after a dropped connection) finds its own work done. It
-- still writes, so that a WAIT after it on a new connection covers the commit.
if cur[1] == ARGV[1] and cur[2] == 'complete' then
  redis.call('HSET', meta, 'hb', now)
  return {'ok'}
end
if cur[1] ~= ARGV[1] or cur[2] ~= 'writing' then return {'lost'} end
local n = tonumber(ARGV[2])
local got = wrong_tail(meta, chunks, n)
if got then return {'corrupt', 'expected chunk ' .. (n - 1) .. ' last, found entry ' .. got} end
-- Consumers may have trimmed the chunks (and the header) they all read: chunks 0 to t-1 are gone.
local t = tonumber(redis.call('HGET', meta, 'trimmed') or '0')
-- The header and one entry per chunk left: anything less is a gap.
local want = n + 1
if t > 0 then want = n - t end
local len = redis.call('XLEN', chunks)
if len ~= want then return {'corrupt', 'expected ' .. want .. ' entries, the stream holds ' .. len} end
redis.call('XADD', chunks, n .. '-2', 'end', ARGV[3], 'chunks', ARGV[2], 'crc32', ARGV[4])
redis.call('HSET', meta, 'state', 'complete', 'size', ARGV[3], 'chunks', ARGV[2], 'crc32', ARGV[4],
  'updated', now, 'hb', now)
-- Channel receivers that gave the file up while it was being written acknowledged it already:
-- when they all did, nobody is left to read it.
if all_acknowledged(meta) then
  redis.call('DEL', meta, chunks, events)
  return {'ok'}
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', meta, ttl); redis.call('EXPIRE', chunks, ttl); redis.call('EXPIRE', events, ttl)
end
return {'ok'}
`,
);

/**
 * Abort: append an abort record after whatever was stored, so that following readers learn it in
 * order, and mark the file aborted, recording the committed prefix of whole chunks (where a resume
 * continues). KEYS: meta, chunks. ARGV: writer, reason, size, chunks, crc32, lost ('1' when Redis lost
 * acknowledged chunks). Returns 1 or 0.
 */
export const ABORT = script(
  'abort',
  `${PRELUDE}
local meta, chunks = KEYS[1], KEYS[2]
local cur = redis.call('HMGET', meta, 'writer', 'state')
if cur[1] ~= ARGV[1] or cur[2] ~= 'writing' then return 0 end
if redis.call('EXISTS', chunks) == 1 then
  redis.call('XADD', chunks, next_record(chunks) .. '-2', 'abort', ARGV[2])
end
redis.call('HSET', meta, 'state', 'aborted', 'updated', now, 'size', ARGV[3], 'chunks', ARGV[4], 'crc32', ARGV[5])
if ARGV[6] == '1' then redis.call('HSET', meta, 'lost', '1') end
return 1
`,
  'allow-oom',
);

/**
 * Remove a file: its metadata, chunks and events go in one step.
 * KEYS: meta, events, chunks. ARGV: gen, version. Returns 1 | 0 (nothing there) | {'retry'} | {'format', detail}
 */
export const REMOVE = script(
  'remove',
  `${PRELUDE}
local meta, events, chunks = KEYS[1], KEYS[2], KEYS[3]
local refused = check_file(meta, ARGV[2], ARGV[1])
if refused then return refused end
-- Every key of the file goes: Redis is left clean. Readers blocked on the deleted keys notice
-- within their liveness interval; a reader waiting for a new file wakes when it is created.
redis.call('DEL', meta, chunks, events)
return 1
`,
  'allow-oom',
);

/**
 * Set (or, with ttl 0, remove) the expiry of every key of a file at once.
 * KEYS: meta, chunks, events. ARGV: gen, version, ttl(s). Returns 1 | 0 (no file) | {'retry'} | {'format', detail}
 */
export const EXPIRE = script(
  'expire',
  `${PRELUDE}
local meta, chunks, events = KEYS[1], KEYS[2], KEYS[3]
local refused = check_file(meta, ARGV[2], ARGV[1])
if refused then return refused end
local ttl = tonumber(ARGV[3])
for _, k in ipairs({meta, chunks, events}) do
  if ttl > 0 then redis.call('EXPIRE', k, ttl) else redis.call('PERSIST', k) end
end
return 1
`,
  'allow-oom',
);

/**
 * Rename a file: move its three keys to the new key's names in one step. Only a complete or
 * aborted file moves (a writer's keys must not move under it); on a cluster both names must hash
 * to one slot, which Redis itself enforces.
 * KEYS: meta, chunks, events of the old name; meta, chunks (same gen), events of the new name; the
 * new name's current chunk stream (or its own chunks key again when there is no file).
 * ARGV: gen, version, overwrite, target gen.
 * Returns {'ok'} | {'missing'} | {'busy'} | {'exists', state} | {'retry'} | {'format', detail}
 */
export const RENAME = script(
  'rename',
  `${PRELUDE}
local meta, chunks, events, tmeta, tchunks, tevents, told = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
if kind(meta) == 'none' then return {'missing'} end
for _, k in ipairs({meta, tmeta}) do
  if kind(k) ~= 'none' and kind(k) ~= 'hash' then return {'format', 'a metadata key holds a ' .. kind(k)} end
end
local cur = redis.call('HMGET', meta, 'v', 'gen', 'state')
if cur[1] ~= ARGV[2] then return {'format', 'stored in format version ' .. tostring(cur[1])} end
if cur[2] ~= ARGV[1] then return {'retry'} end
if cur[3] == 'writing' then return {'busy'} end
if redis.call('EXISTS', tmeta) == 1 then
  local t = redis.call('HMGET', tmeta, 'v', 'gen', 'state')
  if t[1] ~= ARGV[2] then return {'format', 'the new name holds a file in format version ' .. tostring(t[1])} end
  if t[2] ~= ARGV[4] then return {'retry'} end
  if ARGV[3] ~= '1' or t[3] == 'writing' then return {'exists', t[3]} end
  redis.call('DEL', tmeta, told)
  redis.call('XADD', tevents, 'MAXLEN', '~', 16, '*', 'removed', t[2])
elseif ARGV[4] ~= '' then
  return {'retry'}
end
redis.call('RENAME', meta, tmeta)
if redis.call('EXISTS', chunks) == 1 then redis.call('RENAME', chunks, tchunks) end
redis.call('DEL', events)
redis.call('XADD', tevents, 'MAXLEN', '~', 16, '*', 'created', ARGV[1])
local ttl = redis.call('PTTL', tmeta)
if ttl > 0 then redis.call('PEXPIRE', tevents, ttl) else redis.call('PERSIST', tevents) end
return {'ok'}
`,
);

/**
 * A consumer acknowledges a complete file, once per name (a field `ack:<name>` in the metadata
 * hash); when the writer's `consumers` are all done, every key of the file is deleted. A channel
 * receiver (ARGV[3] '1') acknowledges a file in any state, once it is done with it, whatever
 * happened: an aborted file goes once every consumer has moved past it, and one still being
 * written goes when it is committed (never under a live writer). Whatever the state, the
 * consumer's position no longer holds back trimming: it needs nothing more of the file.
 * KEYS: meta, chunks, events. ARGV: gen, consumer, any state ('1' or '0').
 * Returns {'acked', count, trimmed} | {'deleted', count, trim} | {'missing'} | {'state', state, trimmed},
 * where trimmed is the number of chunks trimmed now.
 */
export const ACK = script(
  'ack',
  `${PRELUDE}
local meta, chunks, events = KEYS[1], KEYS[2], KEYS[3]
local cur = redis.call('HMGET', meta, 'gen', 'state', 'trim')
if cur[1] ~= ARGV[1] then return {'missing'} end
local trimmed = 0
if cur[3] == '1' then
  redis.call('HSET', meta, 'pos:' .. ARGV[2], 'done')
  trimmed = trim_consumed(meta, chunks)
end
if cur[2] ~= 'complete' and ARGV[3] ~= '1' then return {'state', tostring(cur[2]), trimmed} end
if redis.call('HSETNX', meta, 'ack:' .. ARGV[2], now) == 1 then redis.call('HINCRBY', meta, 'acks', 1) end
local count = tonumber(redis.call('HGET', meta, 'acks'))
if cur[2] ~= 'writing' and all_acknowledged(meta) then
  redis.call('DEL', meta, chunks, events)
  return {'deleted', count, cur[3] or '0'}
end
return {'acked', count, trimmed}
`,
  'allow-oom',
);

/**
 * A consumer reports how far it has consumed; chunks that every consumer has passed are trimmed,
 * when the writer allowed it (`maxRedisMemory`). The writer itself, held back by its memory limit,
 * trims with an empty consumer name: consumers that are all done with the file trim nothing more.
 * KEYS: meta, chunks. ARGV: gen, consumer (or ''), position (chunks consumed).
 * Returns the number of chunks trimmed now (0 when none).
 */
export const TRIM = script(
  'trim',
  `${PRELUDE}
local meta, chunks = KEYS[1], KEYS[2]
local cur = redis.call('HMGET', meta, 'gen', 'trim')
if cur[1] ~= ARGV[1] or cur[2] ~= '1' then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', meta, 'pos:' .. ARGV[2], ARGV[3]) end
return trim_consumed(meta, chunks)
`,
  'allow-oom',
);

/**
 * A consumer starts reading a file whose consumers trim what they all passed: it records the chunk
 * it starts at as its position, so that nothing from there on is trimmed under it, or learns that
 * what it needs is gone. A consumer that restarts (ARGV[4] '1') and finds the head of the file
 * trimmed starts at the first chunk still held, when its own recorded position shows that it had
 * consumed everything before it; otherwise what was trimmed is lost to it.
 * KEYS: meta. ARGV: gen, consumer, first chunk wanted, restart ('1' or '0').
 * Returns {'ok', chunk} | {'trimmed', trimmed} | {'missing'}
 */
export const JOIN = script(
  'join',
  `
local meta = KEYS[1]
local cur = redis.call('HMGET', meta, 'gen', 'trim', 'trimmed', 'pos:' .. ARGV[2])
if cur[1] ~= ARGV[1] then return {'missing'} end
local want = tonumber(ARGV[3])
if cur[2] ~= '1' then return {'ok', want} end
local trimmed = tonumber(cur[3] or '0')
if want < trimmed then
  local had = cur[4] == 'done' or (cur[4] and tonumber(cur[4]) >= trimmed)
  if ARGV[4] ~= '1' or not had then return {'trimmed', trimmed} end
  want = trimmed
end
redis.call('HSET', meta, 'pos:' .. ARGV[2], want)
return {'ok', want}
`,
  'allow-oom',
);

/**
 * A reader found the writer silent: if its lease really is stale by the server's clock (three
 * heartbeat intervals) and the file is still being written, mark it aborted, with an abort record
 * after whatever is stored, so that every reader learns it at once and none waits for it again.
 * The sizes of the last heartbeat stay, so that `resume` can still continue the file.
 * KEYS: meta, chunks. ARGV: gen, reason.
 * Returns {'aborted'} | {'alive'} | {'state', state} | {'missing'}
 */
export const ABANDON = script(
  'abandon',
  `${PRELUDE}
local meta, chunks = KEYS[1], KEYS[2]
local cur = redis.call('HMGET', meta, 'gen', 'state', 'hb', 'hbi')
if cur[1] ~= ARGV[1] then return {'missing'} end
if cur[2] ~= 'writing' then return {'state', tostring(cur[2])} end
if now - tonumber(cur[3] or 0) <= 3 * tonumber(cur[4] or 0) then return {'alive'} end
if redis.call('EXISTS', chunks) == 1 then
  redis.call('XADD', chunks, next_record(chunks) .. '-2', 'abort', ARGV[2])
end
redis.call('HSET', meta, 'state', 'aborted', 'updated', now)
return {'aborted'}
`,
  'allow-oom',
);

/**
 * Repair after refused chunk writes: delete every entry from record n on (chunks stored after a
 * refused one), so that the writer can send them again in order. Wakes readers stopped at the gap.
 * KEYS: meta, chunks, events. ARGV: writer, n. Returns 1, 0 when the lease is lost, or
 * {'lost', lastId} when acknowledged chunks are missing.
 */
export const REPAIR = script(
  'repair',
  `${PRELUDE}
local meta, chunks, events = KEYS[1], KEYS[2], KEYS[3]
local cur = redis.call('HMGET', meta, 'writer', 'state', 'gen')
if cur[1] ~= ARGV[1] or cur[2] ~= 'writing' then return 0 end
local n = tonumber(ARGV[2])
truncate(chunks, n)
-- Every chunk below n was acknowledged. If the last of them is not the stream's last entry now,
-- Redis lost acknowledged chunks (a replica without them took over from a failed primary):
-- nothing the writer still holds can fill that gap.
local got = wrong_tail(meta, chunks, n)
if got then return {'lost', got} end
redis.call('XADD', events, 'MAXLEN', '~', 16, '*', 'repaired', cur[3])
return 1
`,
  'allow-oom',
);

/**
 * Resume: take over a file whose writer is gone (state writing with a stale lease, or aborted),
 * cut it back to the committed prefix recorded by the last heartbeat, and hand back what the new
 * writer needs to continue.
 * KEYS: meta, chunks, events. ARGV: version, gen, writer, hbi(ms).
 * Returns {'ok', gen, chunkSize, chunks, size, crc32, encoding} | {'missing'} | {'busy'} |
 * {'complete'} | {'retry'} | {'format', detail}
 */
export const RESUME = script(
  'resume',
  `${PRELUDE}
local meta, chunks, events = KEYS[1], KEYS[2], KEYS[3]
if kind(meta) == 'none' then return {'missing'} end
if kind(meta) ~= 'hash' then return {'format', 'the metadata key holds a ' .. kind(meta)} end
local cur = redis.call('HMGET', meta, 'v', 'gen', 'state', 'hb', 'hbi', 'writer', 'chunkSize', 'chunks', 'size', 'crc32', 'encoding')
if cur[1] ~= ARGV[1] then return {'format', 'stored in format version ' .. tostring(cur[1])} end
if cur[2] ~= ARGV[2] then return {'retry'} end
local mine = cur[6] == ARGV[3] and cur[3] == 'writing'
if not mine then
  if cur[3] == 'complete' then return {'complete'} end
  if cur[3] == 'writing' and now - tonumber(cur[4] or 0) <= 3 * tonumber(cur[5] or 0) then return {'busy'} end
  if redis.call('EXISTS', chunks) == 0 then return {'format', 'its chunk stream is gone'} end
  truncate(chunks, tonumber(cur[8]))
  redis.call('HSET', meta, 'state', 'writing', 'writer', ARGV[3], 'hb', now, 'hbi', ARGV[4], 'updated', now)
  redis.call('XADD', events, 'MAXLEN', '~', 16, '*', 'resumed', cur[2])
end
return {'ok', cur[2], cur[7], cur[8], cur[9], cur[10] or '', cur[11]}
`,
);

/**
 * Run a script by SHA, loading it on the first NOSCRIPT (after a server restart or on a new
 * cluster node). The client routes by the first key, which is enough: all keys share a hash tag.
 * @internal
 */
export async function runScript(client: RedisClient, s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
      return client.eval(s.source, keys.length, ...keys, ...args);
    }
    throw err;
  }
}

/**
 * Run a script and then `WAIT replicas timeout` in one pipeline, so that the WAIT runs on the
 * connection (and, on a cluster, the node) the script wrote through. Resolves to the script's reply
 * and the number of replicas that confirmed.
 * @internal
 */
export async function runScriptAndWait(
  client: RedisClient,
  s: Script,
  keys: string[],
  args: (string | number)[],
  replicas: number,
  timeoutMs: number,
): Promise<{ reply: unknown; replicas: number }> {
  for (const how of ['evalsha', 'eval'] as const) {
    const replies = await client
      .pipeline([
        [how, how === 'evalsha' ? s.sha : s.source, keys.length, ...keys, ...args],
        ['wait', replicas, timeoutMs],
      ])
      .exec();
    const [[scriptError, reply] = [null, null], [waitError, confirmed] = [null, 0]] = replies ?? [];
    if (scriptError instanceof Error && how === 'evalsha' && scriptError.message.startsWith('NOSCRIPT')) continue;
    if (scriptError) throw scriptError;
    if (waitError) throw waitError;
    return { reply, replicas: confirmed as number };
  }
  throw new Error(`script ${s.name} could not be loaded`);
}

/**
 * Redis's `used_memory`, read on the node that holds KEYS[1]. A script rather than INFO because a
 * cluster client routes a script by its key, and the memory that counts is that node's.
 * KEYS: any key of the file (not read). Returns used_memory in bytes.
 */
export const USED_MEMORY = script(
  'used-memory',
  `return tonumber(string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)'))`,
  'no-writes,allow-oom',
);
