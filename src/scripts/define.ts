/**
 * How the package's Lua scripts are defined and run: each script names its keys and arguments,
 * gets its field names and constants from the storage format module (never spelled out in Lua),
 * and has one typed wrapper that takes named arguments and decodes a named reply.
 * @internal
 * @module
 */

import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  EMPTY_CRC,
  Event,
  FIRST_PIECE,
  Field,
  Flag,
  FORMAT_VERSION,
  HEADER_ID,
  Limits,
  MAX_SEQ,
  Meta,
  POSITION_DONE,
  State,
} from '../format.js';
import type { RedisPort } from '../redis/port.js';

/**
 * Every key a script can take, in the one order all scripts pass them: a script's KEYS are the
 * subset it declares, in this order. On a cluster the client routes by the first key; every key of
 * one call shares a hash tag (or, for `rename`, Redis itself refuses keys of two slots).
 */
const KEY_ORDER = ['meta', 'chunks', 'events', 'toMeta', 'toChunks', 'toEvents', 'toOld', 'old', 'log'] as const;
/** @internal */
export type KeyName = (typeof KEY_ORDER)[number];

/** Lua flags: scripts that only record state or free memory may run while Redis is out of memory. */
export type ScriptFlags = 'allow-oom' | 'no-writes,allow-oom';

/** @internal A defined script: its Lua source and SHA1, and how to call it. */
export interface Script<K extends KeyName, A extends string, R> {
  readonly name: string;
  readonly keys: readonly K[];
  readonly args: readonly A[];
  readonly source: string;
  readonly sha: string;
  /** The raw reply (a JSON text, or for a binary script the reply as it is) to the typed reply. */
  readonly decode: (raw: unknown) => R;
  /** Whether the script is run for a reply of Buffers (`EVALSHA` in ioredis's buffer mode). */
  readonly binary: boolean;
  /**
   * Whether it is run with `EVALSHA_RO` (a script that only reads): Redis then lets a user with
   * read access to the keys alone run it, where `EVALSHA` declares its keys as written to.
   */
  readonly readOnly: boolean;
}

/** A Lua table constructor for a frozen object of names: `{key='value', …}`. */
function luaTable(values: Readonly<Record<string, string | number>>): string {
  const entries = Object.entries(values).map(([k, v]) => `${k}=${typeof v === 'number' ? v : luaString(v)}`);
  return `{${entries.join(', ')}}`;
}

function luaString(text: string): string {
  if (!/^[\w:. -]*$/.test(text)) throw new Error(`unexpected character in a format constant: ${JSON.stringify(text)}`);
  return `'${text}'`;
}

/**
 * The format's names, as Lua tables every script can use: `M.state` is the metadata field of the
 * state, `F.data` the field of a piece's bytes, `S.writing` a state, `E.created` an event, and `C`
 * the constants.
 */
const FORMAT_PRELUDE = `
local M = ${luaTable(Meta)}
local F = ${luaTable(Field)}
local S = ${luaTable(State)}
local E = ${luaTable(Event)}
local C = ${luaTable({
  version: String(FORMAT_VERSION),
  headerId: HEADER_ID,
  firstPiece: FIRST_PIECE,
  maxSeq: MAX_SEQ,
  eventsMaxLen: Limits.eventsMaxLen,
  leaseFactor: Limits.leaseFactor,
  consumedTtl: Limits.consumedTtl,
  yes: Flag.yes,
  no: Flag.no,
  done: POSITION_DONE,
  emptyCrc: EMPTY_CRC,
})}
`;

/**
 * Define a script. `lua` sees its keys as `K.<name>` and its arguments as `A.<name>` (strings, as
 * Redis passes them), the format's names (see {@link FORMAT_PRELUDE}), and the shared functions in
 * `includes`; it returns `cjson.encode(...)` of a table with named fields, which `decode` turns into
 * the typed reply. A script that returns bytes (JSON text cannot carry them) returns an array
 * instead, and names `decodeBinary`, which gets the reply with every string as a Buffer.
 */
export function defineScript<K extends KeyName, A extends string, R>(def: {
  name: string;
  keys: readonly K[];
  args: readonly A[];
  flags?: ScriptFlags;
  includes?: readonly string[];
  lua: string;
  decode?: (reply: Record<string, unknown>) => R;
  decodeBinary?: (reply: unknown) => R;
  readOnly?: boolean;
}): Script<K, A, R> {
  if (def.readOnly && def.flags !== 'no-writes,allow-oom') {
    throw new Error(`script ${def.name}: a script run as read-only must be flagged no-writes`);
  }
  const positions = def.keys.map((k) => KEY_ORDER.indexOf(k));
  if (positions.some((p, i) => p < 0 || (i > 0 && p <= positions[i - 1]!))) {
    throw new Error(`script ${def.name}: keys must follow the order ${KEY_ORDER.join(', ')}`);
  }
  const bind = (table: string, names: readonly string[], from: string): string =>
    `local ${table} = {${names.map((n, i) => `${n}=${from}[${i + 1}]`).join(', ')}}`;
  // The shebang makes Redis refuse a script that may write as a whole while it is out of memory,
  // instead of failing half-way through it (scripts are not rolled back).
  const source = [
    `#!lua${def.flags ? ` flags=${def.flags}` : ''}`,
    FORMAT_PRELUDE,
    bind('K', def.keys, 'KEYS'),
    bind('A', def.args, 'ARGV'),
    ...(def.includes ?? []),
    def.lua,
  ].join('\n');
  const decode = def.decode ?? ((reply: Record<string, unknown>) => reply as R);
  return {
    name: def.name,
    keys: def.keys,
    args: def.args,
    source,
    sha: createHash('sha1').update(source).digest('hex'),
    decode: def.decodeBinary ?? ((raw: unknown) => decode(parseReply(def.name, raw))),
    binary: def.decodeBinary !== undefined,
    readOnly: def.readOnly ?? false,
  };
}

function parseReply(name: string, raw: unknown): Record<string, unknown> {
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : raw;
  if (typeof text !== 'string') throw new Error(`script ${name} replied ${typeof raw}, not JSON text`);
  return JSON.parse(text) as Record<string, unknown>;
}

type Call<K extends KeyName, A extends string> = { keys: Record<K, string>; args: Record<A, string | number> };

function positional<K extends KeyName, A extends string>(
  s: Script<K, A, unknown>,
  call: Call<K, A>,
): (string | number)[] {
  return [s.keys.length, ...s.keys.map((k) => call.keys[k]), ...s.args.map((a) => call.args[a])];
}

/**
 * Run a script by SHA, loading it on the first NOSCRIPT (after a server restart or on a new
 * cluster node), and decode its reply.
 * @internal
 */
export async function run<K extends KeyName, A extends string, R>(
  client: RedisPort,
  s: Script<K, A, R>,
  keys: Record<K, string>,
  args: Record<A, string | number>,
): Promise<R> {
  const params = positional(s, { keys, args });
  const route = s.keys.length > 0 ? keys[s.keys[0]!] : undefined;
  const suffix = s.readOnly ? '_RO' : '';
  const call = (command: 'EVALSHA' | 'EVAL', script: string): Promise<unknown> =>
    client.send(route, [command + suffix, script, ...params], s.binary);
  let raw: unknown;
  try {
    raw = await call('EVALSHA', s.sha);
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
    raw = await call('EVAL', s.source);
  }
  return s.decode(raw);
}

/**
 * Run a script and then `WAIT replicas timeout` in one pipeline, so that the WAIT runs on the
 * connection (and, on a cluster, the node) the script wrote through. Resolves to the decoded reply
 * and the number of replicas that confirmed.
 * @internal
 */
export async function runAndWait<K extends KeyName, A extends string, R>(
  client: RedisPort,
  s: Script<K, A, R>,
  keys: Record<K, string>,
  args: Record<A, string | number>,
  replicas: number,
  timeoutMs: number,
): Promise<{ reply: R; replicas: number }> {
  const params = positional(s, { keys, args });
  const route = keys[s.keys[0]!];
  for (const how of ['EVALSHA', 'EVAL'] as const) {
    const replies = await client.batch(route, [
      [how, how === 'EVALSHA' ? s.sha : s.source, ...params],
      ['WAIT', replicas, timeoutMs],
    ]);
    const [[scriptError, reply] = [null, null], [waitError, confirmed] = [null, 0]] = replies;
    if (scriptError instanceof Error && how === 'EVALSHA' && scriptError.message.startsWith('NOSCRIPT')) continue;
    if (scriptError) throw scriptError;
    if (waitError) throw waitError;
    return { reply: s.decode(reply), replicas: confirmed as number };
  }
  throw new Error(`script ${s.name} could not be loaded`);
}
