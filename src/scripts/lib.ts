/**
 * Lua functions shared by several scripts, included by name (see `defineScript`'s `includes`).
 * Each uses only the format's names (`M`, `F`, `S`, `E`, `C`), never a field spelled out.
 * @internal
 * @module
 */

/** `now`: the server's time in ms, so that client clocks never decide whether a lease is stale. */
export const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** `kind(key)`: the type of a key, as a plain string whatever the protocol. */
export const KIND = `
local function kind(k) local r = redis.call('TYPE', k); if type(r) == 'table' then return r.ok end; return r end
`;

/**
 * `version_detail(v)`: why a metadata hash whose format version field holds `v` (false when it has
 * none) is not one this version reads.
 */
export const VERSION_DETAIL = `
local function version_detail(v)
  if not v then return 'the metadata hash carries no format version' end
  return 'stored in format version ' .. v
end
`;

/**
 * `check_file(meta, gen)`: for scripts on a whole file: nil when meta holds a file of this format
 * version and generation, else the reply to give (no file, the generation changed, not ours).
 */
export const CHECK_FILE = `${KIND}${VERSION_DETAIL}
local function check_file(meta, gen)
  if kind(meta) == 'none' then return {status='missing'} end
  if kind(meta) ~= 'hash' then return {status='format', detail='the metadata key holds a ' .. kind(meta)} end
  local cur = redis.call('HMGET', meta, M.version, M.gen)
  if cur[1] ~= C.version then return {status='format', detail=version_detail(cur[1])} end
  -- A hash without its generation (damaged) is the caller's '' (it read none): it can be removed.
  if (cur[2] or '') ~= gen then return {status='retry'} end
  return nil
end
`;

/** `lease_live(hb, hbi)`: whether a writer that last beat at `hb` with interval `hbi` holds its lease. */
export const LEASE = `
local function lease_left(hb, hbi)
  return C.leaseFactor * tonumber(hbi or 0) - (now - tonumber(hb or 0))
end
local function lease_live(hb, hbi) return lease_left(hb, hbi) >= 0 end
`;

/**
 * `id_before(n, s)`: the largest id below piece s of record n. `truncate(stream, n, s)`: delete
 * every entry from piece s of record n on, and set the stream's last id just below it, so that the
 * piece can be written again.
 */
export const TRUNCATE = `
local function id_before(n, s)
  if s > C.firstPiece then return n .. '-' .. (s - 1) end
  if n > 0 then return (n - 1) .. '-' .. C.maxSeq end
  return C.headerId
end
local function truncate(stream, n, s)
  local from = n .. '-' .. s
  while true do
    local rest = redis.call('XRANGE', stream, from, '+', 'COUNT', 500)
    if #rest == 0 then break end
    local ids = {}
    for i, e in ipairs(rest) do ids[i] = e[1] end
    redis.call('XDEL', stream, unpack(ids))
  end
  if redis.call('EXISTS', stream) == 1 then redis.call('XSETID', stream, id_before(n, s)) end
end
`;

/**
 * `wrong_tail(meta, stream, last)`: nil when \`last\` (the id of the writer's last acknowledged
 * piece, or the header's) is the stream's last entry, or consumers trimmed its chunk; else the id
 * of the last entry ('nothing' when there is none): entries that Redis acknowledged are gone.
 */
export const WRONG_TAIL = `
local function wrong_tail(meta, stream, last)
  if last ~= C.headerId then
    local n = tonumber(string.match(last, '^(%d+)-'))
    if n < tonumber(redis.call('HGET', meta, M.trimmed) or 0) then return nil end
  end
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #top == 0 then return 'nothing' end
  if top[1][1] == last then return nil end
  return top[1][1]
end
`;

/**
 * `next_record(stream)`: the number of the record after the last id the stream ever gave out,
 * where an abort record goes. Not after its last entry: entries that a repair deleted, that
 * consumers trimmed, or that Redis lost in a failover leave their ids behind, and a reader must
 * meet the gap they left rather than an abort record in their place.
 */
export const NEXT_RECORD = `
local function next_record(stream)
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      if info[i + 1] == C.headerId then return 0 end
      return tonumber(string.match(info[i + 1], '^(%d+)-')) + 1
    end
  end
  return 0
end
`;

/** `all_acknowledged(meta)`: whether the writer's consumers have all acknowledged the file. */
export const ALL_ACKNOWLEDGED = `
local function all_acknowledged(meta)
  local consumers = redis.call('HGET', meta, M.consumers)
  if not consumers or consumers == '' then return false end
  local want = cjson.decode(consumers)
  if type(want) == 'number' then return tonumber(redis.call('HGET', meta, M.acks) or 0) >= want end
  for _, name in ipairs(want) do
    if redis.call('HEXISTS', meta, M.ackPrefix .. name) == 0 then return false end
  end
  return true
end
`;

/**
 * `trim_consumed(meta, chunks)`: trim the chunks every consumer has consumed, when the writer
 * allowed it and its memory limit has held it back (pressure). A consumer's position is the number of chunks it consumed, or 'done' once it
 * acknowledged the file. With a count of consumers, trimming starts once that many have a
 * position; with names, once all of them have. Never past the chunks stored. Returns the number
 * of chunks trimmed now, and adds the entries removed to the hash's dropped count.
 */
export const TRIM_CONSUMED = `
local function stored_chunks(meta, stream)
  local n = tonumber(redis.call('HGET', meta, M.trimmed) or 0)
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #top > 0 and top[1][1] ~= C.headerId then
    local r = tonumber(string.match(top[1][1], '^(%d+)-'))
    -- An end or abort record is not a chunk: chunks 0 to r-1 came before it.
    if top[1][2][1] == F.data then r = r + 1 end
    n = math.max(n, r)
  end
  return n
end
local function trim_consumed(meta, chunks)
  local cur = redis.call('HMGET', meta, M.trim, M.consumers, M.trimmed, M.pressure)
  if cur[1] ~= C.yes or not cur[2] or cur[2] == '' or cur[4] ~= C.yes then return 0 end
  local want = cjson.decode(cur[2])
  local least = nil
  local function consider(p)
    if p ~= C.done then
      p = tonumber(p)
      if least == nil or p < least then least = p end
    end
  end
  if type(want) == 'number' then
    local fields = redis.call('HGETALL', meta)
    local seen = 0
    local plen = string.len(M.posPrefix)
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, plen) == M.posPrefix then
        seen = seen + 1
        consider(fields[i + 1])
      end
    end
    if seen < want then return 0 end
  else
    for _, name in ipairs(want) do consider(redis.call('HGET', meta, M.posPrefix .. name) or 0) end
  end
  local stored = stored_chunks(meta, chunks)
  if least == nil or least > stored then least = stored end
  local done = tonumber(cur[3] or 0)
  if least <= done then return 0 end
  local removed = redis.call('XTRIM', chunks, 'MINID', least .. '-0')
  redis.call('HSET', meta, M.trimmed, least)
  redis.call('HINCRBY', meta, M.dropped, removed)
  return least - done
end
`;

/**
 * `log_event(events, name, gen[, chunk])`: append to the file's short event log; a `resumed` event
 * also names the chunk the file was cut back to.
 */
export const LOG_EVENT = `
local function log_event(events, name, gen, chunk)
  if chunk then
    redis.call('XADD', events, 'MAXLEN', '~', C.eventsMaxLen, '*', name, gen, F.chunks, chunk)
  else
    redis.call('XADD', events, 'MAXLEN', '~', C.eventsMaxLen, '*', name, gen)
  end
end
`;
