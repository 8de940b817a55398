/**
 * redis-file-stream: files in Redis as native Node streams.
 * @packageDocumentation
 */

export {
  type AnnouncedFile,
  closeChannel,
  type ReceivedFile,
  receiveFiles,
  type ReceiveFilesOptions,
  removeChannel,
  type SendableFile,
  type SentFile,
  sendFiles,
  type SendFilesOptions,
} from './channel.js';
export type { RedisClient } from './client.js';
export { type CrcImplementation, crcImplementation } from './crc.js';
export { ErrorCodes, RedisFileError, type RedisFileErrorCode } from './errors.js';
export type { FileState } from './format.js';
export { type LineTooLongError, lines, type LinesOptions } from './lines.js';
export { list } from './list.js';
export type { FileStat } from './file-stat.js';
export { expire, remove, rename, stat } from './manage.js';
export type { Progress } from './progress.js';
export type { KeyOptions, ListOptions, ReadStreamOptions, RenameOptions, WriteStreamOptions } from './options.js';
export { createRedisReadStream, RedisReadStream } from './read-stream.js';
export { createRedisWriteStream, RedisWriteStream } from './write-stream.js';
