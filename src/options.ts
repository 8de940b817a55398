/**
 * Options of the factories and of the file operations: their types, their defaults, and the one
 * place where they are checked, one module each under `options/` (what they share, the write
 * stream's, the read stream's, the file operations'). Everything is validated synchronously at the
 * call, before any I/O; bad arguments are `TypeError` / `RangeError` with Node's own error codes,
 * thrown by the stream factories, and the rejection of the promise (or of the first step of the
 * async iterator) that the other functions return.
 * @module
 */

export {
  type Bag,
  checkClient,
  checkClientAndKey,
  checkKnown,
  checkObject,
  FILE_READ_BYTES,
  failedIteration,
  incompatible,
  int,
  invalidType,
  invalidValue,
  type KeyOptions,
  LONE_SURROGATE,
  outOfRange,
} from './options/common.js';
export {
  checkSeconds,
  type ListOptions,
  type RenameOptions,
  resolveKeyOptions,
  resolveListOptions,
  resolveRenameOptions,
} from './options/manage.js';
export { READ_OPTIONS, type ReadStreamOptions, type ResolvedReadOptions, resolveReadOptions } from './options/read.js';
export {
  MAX_CHUNK_SIZE,
  type ResolvedWriteOptions,
  resolveWriteOptions,
  WRITE_OPTIONS,
  type WriteStreamOptions,
} from './options/write.js';
