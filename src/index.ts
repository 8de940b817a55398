/**
 * redis-file-stream: files in Redis as native Node streams.
 * @packageDocumentation
 */

export type { RedisClient } from './client.js';
export { ErrorCodes, RedisFileError, type RedisFileErrorCode } from './errors.js';
export type { FileState } from './format.js';
export { type FileStat, remove, stat } from './manage.js';
export type { KeyOptions, ReadStreamOptions, WriteStreamOptions } from './options.js';
export { createRedisReadStream, RedisReadStream } from './read-stream.js';
export { createRedisWriteStream, RedisWriteStream } from './write-stream.js';
