/**
 * Redis's glob (the patterns of KEYS and SCAN MATCH), matched against a file's key. The syntax
 * and its corner cases are those of Redis's `stringmatchlen` (util.c), so that a pattern means what
 * it means to Redis; but it is matched against the key's characters (code points), not the bytes of
 * the Redis key: `?` is one character of the name, whatever its UTF-8 length or its escape in the
 * Redis key (`{` is stored as `%7B`).
 * @internal
 * @module
 */

type Token =
  | { readonly kind: 'star' }
  | { readonly kind: 'any' }
  | { readonly kind: 'char'; readonly cp: number }
  | { readonly kind: 'class'; readonly negate: boolean; readonly ranges: readonly (readonly [number, number])[] };

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const CARET = 0x5e;
const BACKSLASH = 0x5c;
const DASH = 0x2d;

/**
 * The tokens of a pattern, read as `stringmatchlen` reads it: `*` (a run of them is one), `?`,
 * `\x` (x literally; a `\` at the end is itself), and `[...]`: `^` first negates; inside, `\x` is x,
 * `a-z` a range (reversed ones are turned round), anything else itself; `]` closes it, and a class
 * that is never closed runs to the end of the pattern. Every token but `*` stands for one character.
 */
function tokenize(glob: string): Token[] {
  const p = Array.from(glob, (c) => c.codePointAt(0)!);
  const tokens: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === STAR) {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === QUESTION) {
      tokens.push({ kind: 'any' });
    } else if (c === OPEN) {
      i++;
      const negate = p[i] === CARET;
      if (negate) i++;
      const ranges: [number, number][] = [];
      for (; i < p.length && p[i] !== CLOSE; i++) {
        if (p[i] === BACKSLASH && i + 1 < p.length) {
          i++;
          ranges.push([p[i]!, p[i]!]);
        } else if (i + 2 < p.length && p[i + 1] === DASH) {
          const [a, b] = [p[i]!, p[i + 2]!];
          ranges.push(a <= b ? [a, b] : [b, a]);
          i += 2;
        } else {
          ranges.push([p[i]!, p[i]!]);
        }
      }
      tokens.push({ kind: 'class', negate, ranges });
    } else if (c === BACKSLASH && i + 1 < p.length) {
      tokens.push({ kind: 'char', cp: p[++i]! });
    } else {
      tokens.push({ kind: 'char', cp: c });
    }
  }
  return tokens;
}

function matchesOne(token: Token, cp: number): boolean {
  switch (token.kind) {
    case 'any':
      return true;
    case 'char':
      return token.cp === cp;
    case 'class':
      return token.ranges.some(([lo, hi]) => cp >= lo && cp <= hi) !== token.negate;
    case 'star':
      return false;
  }
}

/**
 * A test of whole keys against the Redis glob `glob`. In time O(pattern × key) at worst, without
 * recursion: each token but `*` takes one character, so on a mismatch only the last `*` needs to
 * take one more (the classic wildcard matcher), whatever the pattern.
 */
export function globMatcher(glob: string): (key: string) => boolean {
  const tokens = tokenize(glob);
  return (key) => {
    const s = Array.from(key, (c) => c.codePointAt(0)!);
    let t = 0;
    let k = 0;
    let star = -1;
    let resumeAt = 0;
    while (k < s.length) {
      const token = tokens[t];
      if (token?.kind === 'star') {
        star = t++;
        resumeAt = k;
      } else if (token !== undefined && matchesOne(token, s[k]!)) {
        t++;
        k++;
      } else if (star >= 0) {
        t = star + 1;
        k = ++resumeAt;
      } else {
        return false;
      }
    }
    while (tokens[t]?.kind === 'star') t++;
    return t === tokens.length;
  };
}
