/**
 * redis-file-stream: files in Redis as native Node streams.
 * @packageDocumentation
 */

export {
  type AnnouncedFile,
  closeChannel,
  type ReceivedFile,
  type ReceiveFilesOptions,
  receiveFiles,
  removeChannel,
  type SendableFile,
  type SendFilesOptions,
  type SentFile,
  sendFiles,
} from './channel.js';
export { type CrcImplementation, crcImplementation } from './crc.js';
export { ErrorCodes, RedisFileError, type RedisFileErrorCode } from './errors.js';
export type { FileStat } from './file-stat.js';
export type { FileState } from './format.js';
export { type LinesOptions, type LineTooLongError, lines } from './lines.js';
export { list } from './list.js';
export { expire, remove, rename, stat } from './manage.js';
export type { MemoryWait } from './memory-guard.js';
export type { KeyOptions, ListOptions, ReadStreamOptions, RenameOptions, WriteStreamOptions } from './options.js';
export type { Progress } from './progress.js';
export { createRedisReadStream, RedisReadStream } from './read-stream.js';
export type { IoredisLikeClient, NodeRedisLikeClient, RedisClient } from './redis/port.js';
export { createRedisWriteStream, RedisWriteStream } from './write-stream.js';
