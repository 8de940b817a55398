/**
 * The bytes stored so far of a file being written: what `stat` reports as its size, so that it is
 * no older than the last piece stored (the hash's own size is the last heartbeat's).
 * @internal
 * @module
 */

import { defineScript } from './define.js';

/** @internal The reply of {@link STORED}: bytes stored, or the file changed. */
export type StoredReply = { status: 'ok'; size: number } | { status: 'missing' };

/**
 * The size of the stored prefix: the chunks before the last entry's, plus the pieces of its chunk.
 * Copies at most one chunk into Lua.
 */
export const STORED = defineScript<'meta' | 'chunks', 'gen', StoredReply>({
  name: 'stored',
  keys: ['meta', 'chunks'],
  args: ['gen'],
  flags: 'no-writes,allow-oom',
  lua: `
local cur = redis.call('HMGET', K.meta, M.gen, M.chunkSize, M.trimmed, M.size)
if cur[1] ~= A.gen then return cjson.encode({status='missing'}) end
local chunkSize = tonumber(cur[2])
local top = redis.call('XREVRANGE', K.chunks, '+', '-', 'COUNT', 1)
-- Nothing stored, or every entry trimmed: the whole chunks trimmed, at least the hash's size.
if #top == 0 or top[1][1] == C.headerId then
  return cjson.encode({status='ok', size=math.max(tonumber(cur[4]), tonumber(cur[3]) * chunkSize)})
end
local n = tonumber(string.match(top[1][1], '^(%d+)-'))
if top[1][2][1] == F.size then return cjson.encode({status='ok', size=tonumber(top[1][2][2])}) end
if top[1][2][1] ~= F.data then return cjson.encode({status='ok', size=tonumber(cur[4])}) end
local size = n * chunkSize
for _, e in ipairs(redis.call('XRANGE', K.chunks, n .. '-0', n .. '-' .. C.maxSeq)) do
  if e[2][1] == F.data then size = size + string.len(e[2][2]) end
end
return cjson.encode({status='ok', size=size})
`,
});
