/**
 * The package's server-side scripts. Every state change that must be atomic (claiming a key,
 * committing the end record, aborting, removing, trimming) runs as one Lua script, so that two
 * clients never interleave half-done changes. Scripts declare every key they touch (cluster- and
 * ACL-safe; the one exception, the chunk stream the open script finds named in the hash, is said
 * there) and take times from the server's clock. Piece writes are plain `XADD`s, not scripts:
 * copying every piece into Lua would cost throughput, and the explicit entry id already makes a
 * retried write harmless.
 * @internal
 * @module
 */

export { ABANDON, ACK, ACK_ANNOUNCED, JOIN, TRIM, USED_MEMORY } from './consumers.js';
export { run, runAndWait, type Script } from './define.js';
export { EXPIRE, REMOVE, RENAME } from './file.js';
export { OPEN } from './read.js';
export { STORED } from './stat.js';
export { ABORT, COMMIT, CREATE, REPAIR, RESUME, TOUCH } from './writer.js';
