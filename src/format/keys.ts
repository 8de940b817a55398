/**
 * The names of a file's Redis keys: the prefix, the hash tag made of the encoded file key, the
 * metadata, event and chunk streams' suffixes, and the SCAN pattern that finds the metadata keys.
 * @internal
 * @module
 */

/** @internal */
export const DEFAULT_PREFIX = 'rfs:';

/** @internal Names of the Redis keys of one file. */
export interface FileKeys {
  /** The metadata hash. */
  readonly meta: string;
  /** The event stream. */
  readonly events: string;
  /** The chunk stream of one generation. */
  chunks(gen: string): string;
}

/**
 * Percent-encode the three characters that would break the hash tag or the decoding.
 * @internal
 */
export function encodeKey(key: string): string {
  return key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

/** @internal Inverse of {@link encodeKey}. */
export function decodeKey(encoded: string): string {
  return encoded.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** @internal */
export function fileKeys(prefix: string, key: string): FileKeys {
  const base = `${prefix}{${encodeKey(key)}}:`;
  return {
    meta: `${base}${META_SUFFIX.slice(1)}`,
    events: `${base}events`,
    chunks: (gen: string) => `${base}chunks:${gen}`,
  };
}

/** @internal The suffix of metadata keys, which `list` scans for. */
export const META_SUFFIX = ':meta';

/**
 * The SCAN pattern for the metadata keys of files whose key matches the Redis glob `match`: one
 * that every such key matches, for the caller to filter by {@link decodeMetaKey} and its own match
 * (`globMatcher`). Literal `%`, `{` and `}` are encoded like keys. Redis's `?` takes one byte of the
 * Redis key, where a character of the file's key may take several (UTF-8, and `%7B` for `{`): it
 * widens to `*`; and where the pattern cannot be encoded exactly (a bracket class, an escape), the
 * whole pattern does.
 * @internal
 */
export function scanPattern(prefix: string, match: string): string {
  const encodable = !/[[\\]/.test(match);
  return `${escapeGlob(prefix)}{${encodable ? encodeKey(match).replaceAll('?', '*') : '*'}}${META_SUFFIX}`;
}

/** @internal The file key of a metadata key found by SCAN, or undefined for any other key. */
export function decodeMetaKey(prefix: string, redisKey: string): string | undefined {
  if (!redisKey.startsWith(`${prefix}{`) || !redisKey.endsWith(`}${META_SUFFIX}`)) return undefined;
  const encoded = redisKey.slice(prefix.length + 1, -(META_SUFFIX.length + 1));
  return /[{}]/.test(encoded) ? undefined : decodeKey(encoded);
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
