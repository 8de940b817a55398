/**
 * Channels: many files, many receivers. A channel is an ordered, durable announcement log (a Redis
 * stream); each receiver is a consumer group of its own on it, so its position lives in Redis.
 * The sender is in `channel/send.ts`, the receiver in `channel/receive.ts`, closing and removing
 * a channel in `channel/log.ts`.
 * @module
 */

export { closeChannel, removeChannel } from './channel/log.js';
export { type ReceivedFile, type ReceiveFilesOptions, receiveFiles } from './channel/receive.js';
export {
  type AnnouncedFile,
  type SendableFile,
  type SendFilesOptions,
  type SentFile,
  sendFiles,
} from './channel/send.js';
