/**
 * Errors raised by redis-file-stream.
 *
 * Every state a caller must tell apart has its own stable `code`. The codes are part of the public
 * API: they never change meaning, and new states get new codes.
 *
 * Bad arguments are not `RedisFileError`s: they are `TypeError` / `RangeError` with Node's own codes
 * (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`), found at the call. The
 * stream factories throw them; functions that return a promise reject with them, and those that
 * return an async iterator reject its first step.
 * @module
 */

import type { RedisPort } from './redis/port.js';

/** Every code a {@link RedisFileError} can carry. */
export const ErrorCodes = Object.freeze({
  /** The key holds no file (never written, removed, expired, or lost in a restart). */
  NOT_FOUND: 'ERR_REDIS_FILE_NOT_FOUND',
  /** The key already holds a file and `overwrite` is off, or another writer holds the key. */
  EXISTS: 'ERR_REDIS_FILE_EXISTS',
  /** The writer aborted or was destroyed before the file was complete. */
  ABORTED: 'ERR_REDIS_FILE_ABORTED',
  /** Stored chunks or the end record do not add up: missing, extra, wrong-sized or altered data. */
  CORRUPT: 'ERR_REDIS_FILE_CORRUPT',
  /** Waited longer than allowed: for a key to appear, or for a writer to make progress. */
  TIMEOUT: 'ERR_REDIS_FILE_TIMEOUT',
  /** The requested byte range lies outside the stored file. */
  RANGE: 'ERR_REDIS_FILE_RANGE',
  /** The key was written in a storage format this version does not read, or is not a file at all. */
  FORMAT: 'ERR_REDIS_FILE_FORMAT',
  /** Redis refused or failed a command (wrong type, permissions, out of memory, connection lost). */
  REDIS: 'ERR_REDIS_FILE_REDIS',
  /** The content could not be decoded (for example a corrupt or truncated gzip stream). */
  DECODE: 'ERR_REDIS_FILE_DECODE',
  /** {@link lines} met a line longer than its `maxLineLength`. */
  LINE_TOO_LONG: 'ERR_REDIS_FILE_LINE_TOO_LONG',
} as const);

/** The union of all {@link ErrorCodes} values. */
export type RedisFileErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * Marks a {@link RedisFileError} of any copy of the package: the ES module and the CommonJS build
 * (and two installed versions) each define the class, and `instanceof` must hold across them.
 */
const BRAND = Symbol.for('redis-file-stream.RedisFileError');

/**
 * The one error class of the package. Tell errors apart by `code`, not by message.
 *
 * `instanceof RedisFileError` holds for an error made by either build of the package (ES module
 * or CommonJS), or by another installed copy of it, as both may be loaded in one process.
 *
 * @example
 * ```ts
 * stream.on('error', (err) => {
 *   if (err instanceof RedisFileError && err.code === 'ERR_REDIS_FILE_NOT_FOUND') { ... }
 * });
 * ```
 */
export class RedisFileError extends Error {
  /** Stable machine-readable code. */
  readonly code: RedisFileErrorCode;
  /** The file key the error is about, when there is one. */
  readonly key: string | undefined;

  constructor(code: RedisFileErrorCode, message: string, options?: { key?: string | undefined; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.key = options?.key;
  }

  override get name(): 'RedisFileError' {
    return 'RedisFileError';
  }

  /**
   * Whether `value` is a RedisFileError of any build of the package. A subclass keeps the
   * ordinary prototype check.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof was asked about
    if (this !== RedisFileError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

// On the prototype, not on each error: not an own property, so never listed, copied or logged.
Object.defineProperty(RedisFileError.prototype, BRAND, { value: true });

/** @internal */
export function notFound(key: string, detail = 'no file is stored at this key'): RedisFileError {
  return new RedisFileError(ErrorCodes.NOT_FOUND, `File ${quote(key)}: ${detail}`, { key });
}

/** @internal */
export function exists(key: string, detail: string): RedisFileError {
  return new RedisFileError(ErrorCodes.EXISTS, `File ${quote(key)}: ${detail}`, { key });
}

/** @internal "a complete file", "an aborted file": a stored file by the state its hash gives (a damaged hash may give none). */
export function fileInState(state: unknown): string {
  if (typeof state !== 'string') return 'a file';
  return `${/^[aeiou]/.test(state) ? 'an' : 'a'} ${state} file`;
}

/** @internal */
export function aborted(key: string, detail: string, cause?: unknown): RedisFileError {
  return new RedisFileError(ErrorCodes.ABORTED, `File ${quote(key)}: ${detail}`, { key, cause });
}

/** @internal */
export function corrupt(key: string, detail: string): RedisFileError {
  return new RedisFileError(ErrorCodes.CORRUPT, `File ${quote(key)} is corrupt: ${detail}`, { key });
}

/** @internal */
export function timeout(key: string, detail: string): RedisFileError {
  return new RedisFileError(ErrorCodes.TIMEOUT, `File ${quote(key)}: ${detail}`, { key });
}

/** @internal */
export function badFormat(key: string, detail: string, cause?: unknown): RedisFileError {
  return new RedisFileError(ErrorCodes.FORMAT, `File ${quote(key)}: ${detail}`, { key, cause });
}

/** @internal */
export function outOfRange(key: string, detail: string): RedisFileError {
  return new RedisFileError(ErrorCodes.RANGE, `File ${quote(key)}: ${detail}`, { key });
}

/** @internal */
export function decodeFailed(key: string, cause: unknown): RedisFileError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new RedisFileError(ErrorCodes.DECODE, `File ${quote(key)}: cannot decompress: ${why}`, { key, cause });
}

/**
 * Wrap an error from Redis or the connection, naming the key (or, with `subject` 'Channel', the
 * channel) and the operation, keeping the original as `cause`. Errors that already are
 * `RedisFileError`s pass through unchanged.
 * @internal
 */
export function wrapRedisError(
  err: unknown,
  key: string,
  operation: string,
  subject: 'File' | 'Channel' = 'File',
): RedisFileError {
  if (err instanceof RedisFileError) return err;
  const why = err instanceof Error ? err.message : String(err);
  if (/^WRONGTYPE/.test(why)) {
    const holder = subject === 'File' ? 'a Redis key of the file' : "the channel's log key";
    return new RedisFileError(
      ErrorCodes.FORMAT,
      `${subject} ${quote(key)}: ${operation} failed: ${holder} holds another type of value (${why})`,
      { key, cause: err },
    );
  }
  // Redis 7.0 does not name a command denied inside a script; ACL LOG does.
  const hint = /NOPERM|can't run this command/.test(why)
    ? ' (check the ACL rules of the Redis user: ACL LOG names what was denied)'
    : /^(MOVED|ASK) /.test(why)
      ? ' (the client is connected to one node of a Redis Cluster: give the package a cluster client)'
      : '';
  return new RedisFileError(ErrorCodes.REDIS, `${subject} ${quote(key)}: ${operation} failed: ${why}${hint}`, {
    key,
    cause: err,
  });
}

/** @internal The error of a stream aborted by its signal, as Node's own streams give it. */
export function signalAbortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  });
}

/**
 * @internal Whether a writer failed because what Redis holds no longer matches what it acknowledged
 * (pieces lost in a failover): readers must then report the file corrupt, not merely aborted.
 */
export function lostChunks(error: Error | null): boolean {
  return error instanceof RedisFileError && error.code === ErrorCodes.CORRUPT;
}

/**
 * Whether Redis refused a command for a passing reason, so that trying again later may succeed:
 * out of memory (`maxmemory` with `noeviction`), a busy script, a cluster in transition or failing
 * over. With `client`, also the client's own failures that its adapter knows to pass (a cluster
 * connection closed under the command while the cluster client itself is still open: a node failed
 * and its replica is about to take over; see `RedisPort.isTransient`).
 * @internal
 */
export function isRetryable(err: unknown, client?: Pick<RedisPort, 'isTransient'>): boolean {
  if (!(err instanceof Error)) return false;
  if (/^(OOM|BUSY|TRYAGAIN|LOADING|CLUSTERDOWN|MASTERDOWN)\b/.test(err.message)) return true;
  return client?.isTransient(err) === true;
}

/** Keys may hold newlines and other control characters: show them escaped. */
function quote(key: string): string {
  return JSON.stringify(key);
}
