/**
 * `redis-file`: the exit codes, the errors a command tells apart, and which of them are the world's
 * state (one line, no stack) rather than a bug, with the line that describes one.
 * @internal
 * @module
 */

import type { Command } from 'commander';
import { ErrorCodes, RedisFileError } from '../index.js';
import { cliWording } from './format.js';

/** Exit codes. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, SIGINT: 130, SIGTERM: 143 });

/** Bad arguments found after commander's parsing (exit 2). */
export class UsageError extends Error {}

/** The connection to Redis could not be opened (exit 1, no stack). */
export class ConnectError extends Error {}

/** A local file could not be read or written (exit 1, no stack). */
export class LocalFileError extends Error {}

/** A failure whose message says it all, naming what failed and why (exit 1, one line, no stack). */
export class Failure extends Error {}

/** The connection to Redis was lost and not restored within --redis-timeout (exit 1, one line). */
export class ConnectionLost extends Error {}

/** SIGINT or SIGTERM arrived; the command stopped (exit 130 / 143). */
export class Interrupted extends Error {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
  }
}

export function notFound(key: string): RedisFileError {
  return new RedisFileError(ErrorCodes.NOT_FOUND, `File ${JSON.stringify(key)}: no file is stored at this key`, {
    key,
  });
}

/** Node's system errors (ECONNREFUSED, ENOENT, …) carry a code and a syscall. */
function isSystemError(err: unknown): boolean {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string'
  );
}

/** Errors that are the world's state, not a bug: reported in one line, without a stack. */
export function isExpected(err: unknown): boolean {
  if (
    err instanceof RedisFileError ||
    err instanceof ConnectError ||
    err instanceof ConnectionLost ||
    err instanceof LocalFileError ||
    err instanceof Failure
  ) {
    return true;
  }
  if (isSystemError(err)) return true;
  // ioredis: a reply error (NOAUTH, NOPERM, …), or the connection lost for good.
  return (
    err instanceof Error &&
    (['ReplyError', 'MaxRetriesPerRequestError'].includes(err.name) || /^Connection is closed/.test(err.message))
  );
}

/**
 * The line that says what an expected error is, in the command's words: the options the library
 * names are the command's flags (see {@link cliWording}).
 */
export function describe(e: Error, context: string): string {
  // A RedisFileError's message names the key already ("File "k": …"), with its code after it.
  if (e instanceof RedisFileError) return `${cliWording(e.message)} (${e.code})`;
  if (e instanceof ConnectError || e instanceof LocalFileError || e instanceof Failure) return e.message;
  if (e.name === 'MaxRetriesPerRequestError') {
    return `${context}: the connection to Redis was lost and could not be restored`;
  }
  return `${context}: ${cliWording(e.message)}`;
}

export function usageHint(cmd: Command): string {
  return `Usage: redis-file ${cmd.name()} ${cmd.usage()}\nRun "redis-file ${cmd.name()} --help" for the options.`;
}
