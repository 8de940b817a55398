/**
 * What the options of every call share: the `prefix` every call that names a file takes, and the
 * checks that turn a bad argument into a `TypeError` / `RangeError` with Node's own error code.
 * Messages follow the pattern "Expected `name` to be <what>, got <what came>"; two options that
 * cannot go together say "`a` cannot be combined with `b`: <why>".
 * @internal
 * @module
 */

import { DEFAULT_PREFIX } from '../format.js';
import { CLIENT_EXPECTED, hasKeyPrefix, isRedisClient, type RedisClient } from '../redis/port.js';

/** Options shared by every call that names a file. */
export interface KeyOptions {
  /**
   * Namespace prefix of every Redis key the package creates, so that an ACL key pattern such as
   * `~rfs:*` can confine a user to them. Must not contain `{` or `}`.
   * @default 'rfs:'
   */
  prefix?: string;
}

/** @internal Least milliseconds between two `progress` events, by default, for readers and writers. */
export const PROGRESS_INTERVAL = 250;

/**
 * @internal Bytes per read of a local file the package opens itself (`sendFiles` given a path):
 * with fs's default of 64 KiB, storing a file took about twice as long as with 1 MiB reads
 * (`benchmarks/file-reads.mjs`: 355 against 649 MiB/s for 256 MiB on loopback); 4 MiB were no
 * faster (666 MiB/s).
 */
export const FILE_READ_BYTES = 1024 * 1024;

/** @internal The options argument, as a bag of named values. */
export type Bag = Record<string, unknown>;

/** @internal */
export function checkObject(value: unknown, name: string): Bag {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidType(name, 'an object', value);
  return value as Bag;
}

/** @internal */
export function checkKnown(o: Bag, name: string, known: string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k) && o[k] !== undefined) {
      const message = `Expected \`${name}\` to hold only known options (${known.join(', ')}), got \`${k}\``;
      throw Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
    }
  }
}

/** @internal */
export function int(o: Bag, name: string, dflt: number, min: number, max: number): number {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw invalidType(name, `an integer from ${min} to ${max}`, v);
  if (!Number.isInteger(v) || v < min || v > max) throw outOfRange(name, `an integer from ${min} to ${max}`, v);
  return v;
}

/** @internal */
export function bool(o: Bag, name: string, dflt: boolean): boolean {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalidType(name, 'a boolean', v);
  return v;
}

/** @internal */
export function str(o: Bag, name: string): string | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, 'a string', v);
  return v;
}

/** @internal The `prefix` option of {@link KeyOptions}. */
export function prefix(o: Bag): string {
  const v = str(o, 'prefix') ?? DEFAULT_PREFIX;
  if (/[{}]/.test(v)) throw invalidValue('prefix', v, 'a string without `{` or `}` (they would break the hash tag)');
  return v;
}

/** @internal A consumer's name: the read option `consumer`, or one of the write option `consumers`. */
export function consumerName(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, 'a string', v);
  if (v.length === 0 || v.length > 256) throw invalidValue(name, v, 'a name of 1 to 256 characters');
  return v;
}

/** @internal */
export function signal(o: Bag): AbortSignal | undefined {
  const v = o.signal;
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', v);
  return v;
}

/**
 * @internal Check the client argument every call takes: a client the package accepts, without
 * ioredis's `keyPrefix` (see {@link hasKeyPrefix}; the `prefix` option names the keys instead).
 */
export function checkClient(client: unknown): asserts client is RedisClient {
  if (!isRedisClient(client)) throw invalidType('client', CLIENT_EXPECTED, client);
  if (hasKeyPrefix(client)) {
    throw invalidValue(
      'client',
      client,
      "a client without ioredis's `keyPrefix` (it is not applied to key names in replies or scripts: name the keys with the `prefix` option instead)",
    );
  }
}

/** @internal A UTF-16 surrogate that is not half of a pair (a pair matches as one code point). */
export const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** @internal Check the client and key arguments every call takes. */
export function checkClientAndKey(client: unknown, key: unknown): asserts client is RedisClient {
  checkClient(client);
  if (typeof key !== 'string') throw invalidType('key', 'a string', key);
  if (key.length === 0) throw invalidValue('key', key, 'a non-empty string');
  // A lone surrogate has no UTF-8 form: two such keys would name one Redis key.
  if (LONE_SURROGATE.test(key)) throw invalidValue('key', key, 'a string without lone surrogates');
}

/**
 * An iteration whose first step rejects with `err`: how a function that returns an async iterator
 * reports a bad argument, found at the call, without throwing there.
 * @internal
 */
// biome-ignore lint/correctness/useYield: it fails at its first step, and yields nothing by design
export async function* failedIteration(err: unknown): AsyncGenerator<never, never> {
  throw err;
}

/** @internal What came, in a message: short, and never the whole of a long string. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return typeof value;
}

interface CodedError extends Error {
  code: string;
}

/** @internal */
export function invalidType(name: string, expected: string, got: unknown): TypeError & CodedError {
  return Object.assign(new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(got)}`), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
}

/** @internal */
export function invalidValue(name: string, got: unknown, expected: string): TypeError & CodedError {
  return Object.assign(new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(got)}`), {
    code: 'ERR_INVALID_ARG_VALUE',
  });
}

/** @internal Two options given together that cannot go together. */
export function incompatible(what: string, other: string): TypeError & CodedError {
  return Object.assign(new TypeError(`${what} cannot be combined with ${other}`), { code: 'ERR_INVALID_ARG_VALUE' });
}

/** @internal */
export function outOfRange(name: string, expected: string, got: unknown): RangeError & CodedError {
  return Object.assign(new RangeError(`Expected \`${name}\` to be ${expected}, got ${describe(got)}`), {
    code: 'ERR_OUT_OF_RANGE',
  });
}
