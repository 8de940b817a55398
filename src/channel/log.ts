/**
 * A channel's log as a whole: closing it (its receivers end), removing it, and the check of the
 * arguments every channel call takes.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { wrapRedisError } from '../errors.js';
import { ChannelField, channelLogKey } from '../format.js';
import { checkClient, invalidType, invalidValue, LONE_SURROGATE, resolveKeyOptions } from '../options.js';
import { portOf, type RedisClient } from '../redis/port.js';

/**
 * Close a channel: every receiver ends once it has processed all files announced before the close.
 * A channel used again after a close is open again: the old close ends nobody later.
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 */
export async function closeChannel(client: RedisClient, channel: string, options?: { prefix?: string }): Promise<void> {
  checkChannel(client, channel);
  const log = channelLogKey(resolveKeyOptions(options).prefix, channel);
  try {
    await portOf(client).send(log, ['XADD', log, '*', ChannelField.close, randomBytes(8).toString('hex')]);
  } catch (err) {
    throw wrapRedisError(err, channel, 'closing the channel', 'Channel');
  }
}

/**
 * Delete a channel's log and every receiver's position in it (the files themselves go with their
 * acknowledgements or TTL).
 * @returns whether there was a channel
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 */
export async function removeChannel(
  client: RedisClient,
  channel: string,
  options?: { prefix?: string },
): Promise<boolean> {
  checkChannel(client, channel);
  const log = channelLogKey(resolveKeyOptions(options).prefix, channel);
  try {
    return Number(await portOf(client).send(log, ['DEL', log])) > 0;
  } catch (err) {
    throw wrapRedisError(err, channel, 'removing the channel', 'Channel');
  }
}

/** @internal The client and channel arguments every channel call takes. */
export function checkChannel(client: unknown, channel: unknown): void {
  checkClient(client);
  if (typeof channel !== 'string') throw invalidType('channel', 'a string', channel);
  if (channel.length === 0) throw invalidValue('channel', channel, 'a non-empty string');
  if (LONE_SURROGATE.test(channel)) throw invalidValue('channel', channel, 'a string without lone surrogates');
}
