/**
 * Scripts on a stored file as a whole: remove, expire, rename. Each refuses a key of another type
 * or format version, and retries (a `retry` reply) when the file changed under the caller.
 * @internal
 * @module
 */

import { defineScript } from './define.js';
import { CHECK_FILE, KIND, LOG_EVENT, VERSION_DETAIL } from './lib.js';

/** @internal A whole-file script's refusal: no file, another format, or the file changed. */
export type FileRefusal = { status: 'missing' } | { status: 'retry' } | { status: 'format'; detail: string };

/** Remove a file: its metadata, chunks and events go in one step. */
export const REMOVE = defineScript<'meta' | 'chunks' | 'events', 'gen', { status: 'ok' } | FileRefusal>({
  name: 'remove',
  keys: ['meta', 'chunks', 'events'],
  args: ['gen'],
  flags: 'allow-oom',
  includes: [CHECK_FILE],
  lua: `
local refused = check_file(K.meta, A.gen)
if refused then return cjson.encode(refused) end
-- Every key of the file goes: Redis is left clean (but for the chunk stream of a damaged hash that
-- lost its generation, which names it). Readers blocked on the deleted keys notice
-- within their liveness interval; a reader waiting for a new file wakes when it is created.
redis.call('DEL', K.meta, K.chunks, K.events)
return cjson.encode({status='ok'})
`,
});

/** Set (or, with ttl 0, remove) the expiry of every key of a file at once. */
export const EXPIRE = defineScript<'meta' | 'chunks' | 'events', 'gen' | 'ttl', { status: 'ok' } | FileRefusal>({
  name: 'expire',
  keys: ['meta', 'chunks', 'events'],
  args: ['gen', 'ttl'],
  flags: 'allow-oom',
  includes: [CHECK_FILE],
  lua: `
local refused = check_file(K.meta, A.gen)
if refused then return cjson.encode(refused) end
local ttl = tonumber(A.ttl)
for _, k in ipairs({K.meta, K.chunks, K.events}) do
  if ttl > 0 then redis.call('EXPIRE', k, ttl) else redis.call('PERSIST', k) end
end
return cjson.encode({status='ok'})
`,
});

/** @internal The reply of {@link RENAME}. */
export type RenameReply = { status: 'ok' } | { status: 'busy' } | { status: 'exists'; state: string } | FileRefusal;

/**
 * Rename a file: move its three keys to the new name's in one step. Only a complete or aborted
 * file moves (a writer's keys must not move under it); on a cluster both names must hash to one
 * slot, which Redis itself enforces. `toOld` is the new name's current chunk stream (or its own
 * chunks key again when there is no file there); `toGen` its generation, or ''.
 */
export const RENAME = defineScript<
  'meta' | 'chunks' | 'events' | 'toMeta' | 'toChunks' | 'toEvents' | 'toOld',
  'gen' | 'overwrite' | 'toGen',
  RenameReply
>({
  name: 'rename',
  keys: ['meta', 'chunks', 'events', 'toMeta', 'toChunks', 'toEvents', 'toOld'],
  args: ['gen', 'overwrite', 'toGen'],
  includes: [KIND, VERSION_DETAIL, LOG_EVENT],
  lua: `
if kind(K.meta) == 'none' then return cjson.encode({status='missing'}) end
for _, k in ipairs({K.meta, K.toMeta}) do
  if kind(k) ~= 'none' and kind(k) ~= 'hash' then return cjson.encode({status='format', detail='a metadata key holds a ' .. kind(k)}) end
end
local cur = redis.call('HMGET', K.meta, M.version, M.gen, M.state)
if cur[1] ~= C.version then return cjson.encode({status='format', detail=version_detail(cur[1])}) end
if (cur[2] or '') ~= A.gen then return cjson.encode({status='retry'}) end
if cur[3] == S.writing then return cjson.encode({status='busy'}) end
-- A file renamed to its own name stays as it is (the steps below would remove it as the file at
-- the new name).
if K.toMeta == K.meta then return cjson.encode({status='ok'}) end
if redis.call('EXISTS', K.toMeta) == 1 then
  local t = redis.call('HMGET', K.toMeta, M.version, M.gen, M.state)
  if t[1] ~= C.version then
    return cjson.encode({status='format', detail='at the new name: ' .. version_detail(t[1])})
  end
  if (t[2] or '') ~= A.toGen then return cjson.encode({status='retry'}) end
  if A.overwrite ~= C.yes or t[3] == S.writing then return cjson.encode({status='exists', state=t[3]}) end
  redis.call('DEL', K.toMeta, K.toOld)
  log_event(K.toEvents, E.removed, t[2] or '')
elseif A.toGen ~= '' then
  return cjson.encode({status='retry'})
end
redis.call('RENAME', K.meta, K.toMeta)
if redis.call('EXISTS', K.chunks) == 1 then redis.call('RENAME', K.chunks, K.toChunks) end
redis.call('DEL', K.events)
log_event(K.toEvents, E.created, A.gen)
local ttl = redis.call('PTTL', K.toMeta)
if ttl > 0 then redis.call('PEXPIRE', K.toEvents, ttl) else redis.call('PERSIST', K.toEvents) end
return cjson.encode({status='ok'})
`,
});
