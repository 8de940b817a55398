/**
 * Builds the conformance vectors (test/conformance/vectors/*.json) from the compact descriptions
 * below, so that every CRC-32 is computed, never typed. After changing a description run
 *
 *   node test/conformance/generate.mjs
 *
 * and commit the JSON with it; test/conformance.test.ts checks that the committed files are exactly
 * this script's output. test/conformance/README.md describes the JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';

// Plausible server times (ms): 2025-11-30T00:00:00Z and a few seconds later. Every lease in the
// vectors is therefore long stale by the clock of any server that loads them.
const T = 1_764_460_800_000;
const GEN = '0123456789abcdef';
const OTHER_GEN = '89abcdef01234567';
const WRITER = '5f3a9c0e7b214d68';

const CORRUPT = 'ERR_REDIS_FILE_CORRUPT';
const FORMAT = 'ERR_REDIS_FILE_FORMAT';
const ABORTED = 'ERR_REDIS_FILE_ABORTED';
const NOT_FOUND = 'ERR_REDIS_FILE_NOT_FOUND';
const RANGE = 'ERR_REDIS_FILE_RANGE';

// gzip of "hello, redis\nhello, redis\n" (mtime 0, OS byte 3), kept as bytes so that the vectors do
// not depend on the zlib build that runs this script.
const GZIP = Buffer.from('1f8b0800000000000203cb48cdc9c9d751284a4dc92ce6ca40e60000fea9dd1d1a000000', 'hex');
// brotli of "abc".
const BROTLI = Buffer.from('0b018061626303', 'hex');

const toBuffer = (x) => (Buffer.isBuffer(x) ? x : Buffer.from(x, 'utf8'));
const crcHex = (bytes) => crc32(toBuffer(bytes)).toString(16).padStart(8, '0');
/** The same bytes with bit `bit` of byte `index` flipped. */
const flip = (bytes, index, bit = 0) => {
  const copy = Buffer.from(toBuffer(bytes));
  copy[index] ^= 1 << bit;
  return copy;
};
/** A CRC in hex with one bit flipped. */
const flipHex = (hex) => ((Number.parseInt(hex, 16) ^ 1) >>> 0).toString(16).padStart(8, '0');

/**
 * A stored file: the header, the pieces of `chunks` (an array of chunks, each an array of pieces,
 * each a string or Buffer) numbered as docs/format.md says, and an end record, an abort record or
 * nothing; with its metadata hash. The shape of `chunks` is not checked, so that damaged layouts
 * can be described the same way.
 */
function file({ chunkSize = 4, chunks = [], encoding = 'identity', state = 'complete', ending, reason } = {}) {
  const end = ending ?? { complete: 'end', aborted: 'abort', writing: 'none' }[state];
  const stream = [
    {
      id: '0-1',
      fields: [
        ['rfs', '2'],
        ['gen', GEN],
        ['chunkSize', String(chunkSize)],
        ['encoding', encoding],
      ],
    },
  ];
  const pieces = [];
  chunks.forEach((chunk, n) => {
    chunk.forEach((piece, i) => {
      const bytes = toBuffer(piece);
      pieces.push(bytes);
      stream.push({
        id: `${n}-${i + 2}`,
        fields: [
          ['d', bytes],
          ['c', crcHex(bytes)],
        ],
      });
    });
  });
  const content = Buffer.concat(pieces);
  const endFields = [
    ['end', String(content.length)],
    ['chunks', String(chunks.length)],
    ['crc32', crcHex(content)],
  ];
  if (end === 'end') stream.push({ id: `${chunks.length}-2`, fields: endFields });
  // One past the last id given out: the last piece's record number + 1, or 0 after the header.
  if (end === 'abort') stream.push({ id: `${chunks.length}-2`, fields: [['abort', reason ?? 'writer destroyed']] });
  // While writing or aborted, the hash holds the whole chunks of the last heartbeat: here all of them.
  let whole = 0;
  let wholeBytes = 0;
  for (const chunk of chunks) {
    const length = chunk.reduce((sum, piece) => sum + toBuffer(piece).length, 0);
    if (length !== chunkSize) break;
    whole += 1;
    wholeBytes += length;
  }
  const done = state === 'complete';
  const meta = {
    v: '2',
    gen: GEN,
    state,
    chunkSize: String(chunkSize),
    encoding,
    size: String(done ? content.length : wholeBytes),
    chunks: String(done ? chunks.length : whole),
    crc32: crcHex(done ? content : content.subarray(0, wholeBytes)),
    contentType: '',
    metadata: '{}',
    created: String(T),
    updated: String(T + 3000),
    writer: WRITER,
    hb: String(T + 3000),
    hbi: '1000',
    consumers: '',
    trim: '0',
    trimmed: '0',
    dropped: '0',
  };
  return { chunkSize, meta, stream, content };
}

function entry(f, id) {
  const found = f.stream.find((e) => e.id === id);
  if (!found) throw new Error(`no entry ${id}`);
  return found;
}
/** Replace the fields of entry `id`. */
function setFields(f, id, fields) {
  entry(f, id).fields = fields;
  return f;
}
/** Set (or add at the end) field `name` of entry `id`. */
function setField(f, id, name, value) {
  const fields = entry(f, id).fields;
  const pair = fields.find(([n]) => n === name);
  if (pair) pair[1] = value;
  else fields.push([name, value]);
  return f;
}
function fieldOf(f, id, name) {
  const pair = entry(f, id).fields.find(([n]) => n === name);
  if (!pair) throw new Error(`no field ${name} in ${id}`);
  return pair[1];
}
function removeEntries(f, ...ids) {
  for (const id of ids) entry(f, id);
  f.stream = f.stream.filter((e) => !ids.includes(e.id));
  return f;
}
function addEntry(f, id, fields) {
  f.stream.push({ id, fields });
  f.stream.sort((a, b) => compareIds(a.id, b.id));
  return f;
}
/** Change the hash: a value sets the field, `undefined` deletes it. */
function setMeta(f, changes) {
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete f.meta[name];
    else f.meta[name] = value;
  }
  return f;
}
/** A piece entry's fields for `bytes`. */
const piece = (bytes) => [
  ['d', toBuffer(bytes)],
  ['c', crcHex(bytes)],
];

function compareIds(a, b) {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

const ok = (bytes) => ({ bytes: toBuffer(bytes) });
const fails = (error, delivered = '') => ({ error, deliveredPrefixOf: toBuffer(delivered) });

/** A vector: `f` is a file (or `{ chunkSize, meta: null, stream: [] }`), `read` overrides the defaults. */
function vector(name, description, f, outcome, read = {}) {
  return {
    name,
    description,
    chunkSize: f.chunkSize,
    meta: f.meta,
    stream: f.stream,
    read: { start: 0, end: null, follow: false, ...read },
    outcome,
  };
}

// ---------------------------------------------------------------------------------------------
// The vectors, one group per file.

const MIXED = [['abcd'], ['ef', 'gh'], ['ij']]; // "abcdefghij": a single piece, two pieces, a short chunk
const mixed = (options = {}) => file({ chunks: MIXED, ...options });

function validGroup() {
  const utf8 = Buffer.from('héllo wörld', 'utf8');
  return [
    vector(
      'empty',
      'An empty file: the header, then `0-2 end 0 chunks 0 crc32 00000000` (The end record).',
      file(),
      ok(''),
    ),
    vector(
      'one-short-chunk',
      'Three bytes in chunk 0 of size 4; the end record `1-2` follows the short chunk (What may follow what, 2).',
      file({ chunks: [['abc']] }),
      ok('abc'),
    ),
    vector(
      'one-full-chunk',
      'One full chunk, then the end record `1-2` (rule 4).',
      file({ chunks: [['abcd']] }),
      ok('abcd'),
    ),
    vector(
      'exact-multiple',
      'Twelve bytes, three full chunks of 4: end record `3-2`, N = ceil(12 / 4) = 3 (The end record).',
      file({ chunks: [['abcd'], ['efgh'], ['ijkl']] }),
      ok('abcdefghijkl'),
    ),
    vector(
      'pieces-in-one-chunk',
      'One chunk of 8 stored as three pieces `0-2`, `0-3`, `0-4` of 2, 3 and 3 bytes (The chunk stream: pieces).',
      file({ chunkSize: 8, chunks: [['ab', 'cde', 'fgh']] }),
      ok('abcdefgh'),
    ),
    vector(
      'one-byte-pieces',
      'A chunk of four 1-byte pieces, then a 1-byte last chunk (Pieces: a piece holds at least 1 byte).',
      file({ chunks: [['a', 'b', 'c', 'd'], ['e']] }),
      ok('abcde'),
    ),
    vector(
      'mixed-pieces',
      'Single-piece and multi-piece chunks mixed; the short last chunk has two pieces, so the end record `4-2` ' +
        'follows a chunk with 0 < filled < chunkSize (What may follow what, 2).',
      file({ chunks: [['abcd'], ['ef', 'gh'], ['ijkl'], ['m', 'n']] }),
      ok('abcdefghijklmn'),
    ),
    vector(
      'binary-bytes',
      'Pieces hold bytes, not text: 00, ff, 80 and 7f are stored and returned as they are.',
      file({ chunks: [[Buffer.from('00ff807f', 'hex')], [Buffer.from('fe01', 'hex')]] }),
      ok(Buffer.from('00ff807ffe01', 'hex')),
    ),
    vector(
      'utf8-split-in-pieces',
      '"héllo wörld" in UTF-8 with piece boundaries inside the two-byte characters: pieces are bytes.',
      file({
        chunkSize: 8,
        chunks: [
          [utf8.subarray(0, 2), utf8.subarray(2, 8)],
          [utf8.subarray(8, 9), utf8.subarray(9)],
        ],
      }),
      ok(utf8),
    ),
    vector(
      'gzip-stored-as-is',
      'Encoding gzip in the header and the hash: a reader without decompress returns the stored bytes ' +
        '(the gzip of "hello, redis\\n" twice), not the text (The metadata hash: encoding).',
      file({
        chunkSize: 16,
        encoding: 'gzip',
        chunks: [[GZIP.subarray(0, 16)], [GZIP.subarray(16, 32)], [GZIP.subarray(32)]],
      }),
      ok(GZIP),
    ),
    vector(
      'declared-encoding',
      'An encoding the writer declared (`br`, brotli of "abc") is a token like any other; the bytes come back as ' +
        'stored.',
      file({ encoding: 'br', chunks: [[BROTLI.subarray(0, 4)], [BROTLI.subarray(4)]] }),
      ok(BROTLI),
    ),
    vector(
      'user-fields',
      'A hash with a content type, user metadata, named consumers and one acknowledgement: all of legal form ' +
        '(The metadata hash); the bytes read as usual.',
      setMeta(mixed(), {
        contentType: 'text/csv; charset=utf-8',
        metadata: '{"owner":"ops","note":"été"}',
        consumers: '["eu-1","eu-2"]',
        'ack:eu-1': String(T + 9000),
        acks: '1',
      }),
      ok('abcdefghij'),
    ),
    vector(
      'chunk-size-16',
      'A sentence in chunks of 16; chunk 1 has two pieces, the last chunk 11 bytes.',
      file({ chunkSize: 16, chunks: [['the quick brown '], ['fox jumps', ' over t'], ['he lazy dog']] }),
      ok('the quick brown fox jumps over the lazy dog'),
    ),
    vector(
      'follow-complete',
      'Following a complete file reads it to its end record like a plain read (Gaps: nothing to wait for).',
      mixed(),
      ok('abcdefghij'),
      { follow: true },
    ),
    vector(
      'writing-stored-so-far',
      'A file still being written (state `writing`, no end record) read with follow: false returns what is ' +
        'stored, the pieces of the unfinished chunk 1 included (README: `false` reads what is stored now).',
      file({ state: 'writing', chunks: [['abcd'], ['ef', 'g']] }),
      ok('abcdefg'),
    ),
    vector(
      'writing-header-only',
      'A file just created (the header only, state `writing`) read with follow: false is empty.',
      file({ state: 'writing' }),
      ok(''),
    ),
  ];
}

function piecesGroup() {
  // A piece whose CRC has a leading zero, to show that it must stay 8 digits.
  let padded;
  for (let i = 0; padded === undefined; i += 1) {
    if (crc32(`p${i}`) < 0x10000000) padded = `p${i}`;
  }
  const paddedFile = file({ chunks: [['abcd'], [padded]] });
  const unpadded = fieldOf(paddedFile, '1-2', 'c').replace(/^0+/, '');
  const efCrc = crcHex('ef');
  if (efCrc.toUpperCase() === efCrc) throw new Error('the CRC of "ef" has no letter');

  return [
    vector(
      'piece-bit-flip',
      'One bit flipped in the bytes of piece `1-3` ("gh" stored as "gi"): its CRC does not match, so none of ' +
        'its bytes is delivered; the pieces before it may be (Pieces).',
      setField(mixed(), '1-3', 'd', flip('gh', 1)),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'piece-bit-flip-first',
      'One bit flipped in the first piece `0-2`: nothing is delivered (Pieces).',
      setField(mixed(), '0-2', 'd', flip('abcd', 3)),
      fails(CORRUPT),
    ),
    vector(
      'piece-crc-altered',
      'The bytes of `1-2` are intact but its `c` has one bit flipped: a CRC that does not match its bytes (Pieces).',
      setField(mixed(), '1-2', 'c', flipHex(efCrc)),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-crc-uppercase',
      `The CRC of "ef" written in uppercase (${efCrc.toUpperCase()}): uppercase hex is damage (Conventions: CRC-32).`,
      setField(mixed(), '1-2', 'c', efCrc.toUpperCase()),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-crc-unpadded',
      `The CRC of "${padded}" without its leading zero (${unpadded}): a CRC is exactly 8 hex digits, ` +
        'zero-padded (Conventions: CRC-32).',
      setField(paddedFile, '1-2', 'c', unpadded),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-crc-nine-digits',
      'The CRC of "ef" with a zero added in front: nine digits are not the form of a CRC (Conventions).',
      setField(mixed(), '1-2', 'c', `0${efCrc}`),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-empty',
      'An empty piece `1-3` (with the CRC of no bytes, 00000000) between two good ones: a piece holds at ' +
        'least 1 byte (Pieces).',
      file({ chunks: [['abcd'], ['ef', '', 'gh'], ['ij']] }),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'piece-fields-swapped',
      'Piece `1-2` as `c <crc> d <bytes>`: fields in another order are damage (The chunk stream: the field lists ' +
        'are exact).',
      setFields(mixed(), '1-2', [
        ['c', efCrc],
        ['d', Buffer.from('ef')],
      ]),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-without-crc',
      'Piece `1-2` with its `d` only: a field missing (the field lists are exact).',
      setFields(mixed(), '1-2', [['d', Buffer.from('ef')]]),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-extra-field',
      'Piece `1-2` with a third field `t 1`: a field added (the field lists are exact).',
      setField(mixed(), '1-2', 't', '1'),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-renamed-field',
      'Piece `1-2` as `data <bytes> c <crc>`: not the form of any entry (the field lists are exact).',
      setFields(mixed(), '1-2', [
        ['data', Buffer.from('ef')],
        ['c', efCrc],
      ]),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'piece-overfills-chunk',
      'Chunk 1 of size 4 as "ef" then "ghi": the second piece would make filled 5 > chunkSize (rule 4).',
      file({ chunks: [['abcd'], ['ef', 'ghi'], ['j']] }),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'piece-larger-than-chunk',
      'A single 5-byte piece in a chunk of 4 (rule 4: a piece that would make filled exceed chunkSize).',
      file({ chunks: [['abcde']] }),
      fails(CORRUPT),
    ),
    vector(
      'extra-piece-after-full-chunk',
      'Chunk 1 full ("efgh"), then an extra piece `1-3`: after a full chunk only `2-2` may follow (rule 4).',
      file({ chunks: [['abcd'], ['efgh', 'x'], ['ij']] }),
      fails(CORRUPT, 'abcdefgh'),
    ),
    vector(
      'missing-piece-in-chunk',
      'Chunk 1 of four 1-byte pieces with `1-3` missing: `1-4` is not an allowed id after `1-2` (rule 2).',
      removeEntries(file({ chunks: [['abcd'], ['e', 'f', 'g', 'h'], ['ij']] }), '1-3'),
      fails(CORRUPT, 'abcde'),
    ),
    vector(
      'missing-first-piece',
      'Chunk 1 starts with `1-3`: its first piece `1-2` is missing (rule 3: a new chunk starts with `n-2`).',
      removeEntries(mixed(), '1-2'),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'missing-chunk',
      'Chunk 1 (`1-2`, `1-3`) is missing: after chunk 0, `2-2` is a gap, and without follow a gap is damage (Gaps).',
      removeEntries(mixed(), '1-2', '1-3'),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'missing-last-chunk',
      'The last chunk `2-2` is missing: the end record `3-2` comes after a gap (Gaps).',
      removeEntries(mixed(), '2-2'),
      fails(CORRUPT, 'abcdefgh'),
    ),
    vector(
      'new-chunk-before-full',
      'A piece of chunk 2 while chunk 1 holds 2 of its 4 bytes: a new chunk starts only after the previous one ' +
        'is full (rule 2).',
      file({ chunks: [['abcd'], ['ef'], ['ghij']] }),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'unknown-entry',
      'Entry `1-2` as `note hello`: neither a piece nor an end or abort record (the field lists are exact).',
      setFields(mixed(), '1-2', [['note', 'hello']]),
      fails(CORRUPT, 'abcd'),
    ),
  ];
}

function headerGroup() {
  const header = (f, fields) => setFields(f, '0-1', fields);
  const fields = (changes) =>
    Object.entries({ rfs: '2', gen: GEN, chunkSize: '4', encoding: 'identity', ...changes })
      .filter(([, v]) => v !== undefined)
      .map(([n, v]) => [n, v]);
  const short = () => file({ chunks: [['abcd'], ['ef']] });
  return [
    vector(
      'header-missing',
      'No `0-1` header while `trimmed` is 0 (What a reader must reject: a header missing).',
      removeEntries(short(), '0-1'),
      fails(CORRUPT),
    ),
    vector(
      'header-version-1',
      'A header of format version 1 (`rfs 1`): ERR_REDIS_FILE_FORMAT (What a reader must reject).',
      header(short(), fields({ rfs: '1' })),
      fails(FORMAT),
    ),
    vector(
      'header-version-3',
      'A header of format version 3: a version other than 2 is ERR_REDIS_FILE_FORMAT.',
      header(short(), fields({ rfs: '3' })),
      fails(FORMAT),
    ),
    vector(
      'header-extra-field',
      'A header with a fifth field pair `compress 0`: fields other than the ones listed (The chunk stream).',
      header(short(), [...fields({}), ['compress', '0']]),
      fails(CORRUPT),
    ),
    vector(
      'header-fields-reordered',
      'A header as `gen … rfs 2 chunkSize 4 encoding identity`: fields in another order (The chunk stream).',
      header(short(), [['gen', GEN], ['rfs', '2'], ...fields({ rfs: undefined, gen: undefined })]),
      fails(CORRUPT),
    ),
    vector(
      'header-without-encoding',
      'A header without its `encoding` field (The chunk stream: a field missing).',
      header(short(), fields({ encoding: undefined })),
      fails(CORRUPT),
    ),
    vector(
      'header-gen-disagrees',
      'The header names another generation than the hash (Which record wins: the hash must equal the header).',
      header(short(), fields({ gen: OTHER_GEN })),
      fails(CORRUPT),
    ),
    vector(
      'header-gen-uppercase',
      "The header spells the generation in uppercase: 16 lowercase hex digits (Keys), and not the hash's.",
      header(short(), fields({ gen: GEN.toUpperCase() })),
      fails(CORRUPT),
    ),
    vector(
      'header-chunk-size-disagrees',
      'The header says chunkSize 8, the hash 4 (Which record wins: the header is the authority, the hash must ' +
        'equal it).',
      header(short(), fields({ chunkSize: '8' })),
      fails(CORRUPT),
    ),
    vector(
      'header-encoding-disagrees',
      'The header says encoding gzip, the hash identity (Which record wins).',
      header(short(), fields({ encoding: 'gzip' })),
      fails(CORRUPT),
    ),
    vector(
      'header-chunk-size-leading-zero',
      "The header's chunkSize written `04`: numbers have no leading zeros (Conventions: numbers).",
      header(short(), fields({ chunkSize: '04' })),
      fails(CORRUPT),
    ),
  ];
}

function hashGroup() {
  const all = 'abcdefg';
  const base = () => file({ chunks: [['abcd'], ['efg']] });
  const crcOfAll = crcHex(all);
  if (crcOfAll.toUpperCase() === crcOfAll) throw new Error('the CRC of "abcdefg" has no letter');
  return [
    vector(
      'hash-missing',
      'No hash and no chunk stream at the key: no file (README: ERR_REDIS_FILE_NOT_FOUND).',
      { chunkSize: 4, meta: null, stream: [] },
      fails(NOT_FOUND),
    ),
    vector(
      'hash-v1',
      'A hash of format version 1 (`v 1`): ERR_REDIS_FILE_FORMAT (What a reader must reject).',
      setMeta(base(), { v: '1' }),
      fails(FORMAT),
    ),
    vector('hash-v3', 'A hash of format version 3: ERR_REDIS_FILE_FORMAT.', setMeta(base(), { v: '3' }), fails(FORMAT)),
    vector(
      'hash-without-v',
      'A hash without `v`: ERR_REDIS_FILE_FORMAT (What a reader must reject: `v` not 2, or missing).',
      setMeta(base(), { v: undefined }),
      fails(FORMAT),
    ),
    vector(
      'hash-without-gen',
      "A hash without `gen` (the chunk stream is stored under the header's generation): a required field " +
        'missing (The metadata hash).',
      setMeta(base(), { gen: undefined }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-without-hb',
      'A hash without `hb`: a required field missing (The metadata hash).',
      setMeta(base(), { hb: undefined }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-without-trim',
      'A hash without `trim`: a required field missing (The metadata hash).',
      setMeta(base(), { trim: undefined }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-without-writer',
      'A hash without `writer`: a required field missing (The metadata hash).',
      setMeta(base(), { writer: undefined }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-without-crc32',
      'A complete 7-byte file whose hash has no `crc32`: required once size > 0 (The metadata hash).',
      setMeta(base(), { crc32: undefined }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-state-unknown',
      'A hash with `state done`: not one of writing, complete, aborted (The metadata hash).',
      setMeta(base(), { state: 'done' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-chunk-size-zero',
      'A hash with `chunkSize 0` (the header says 4): chunkSize is a number ≥ 1 (The metadata hash).',
      setMeta(base(), { chunkSize: '0' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-size-plus-sign',
      'A hash with `size +7`: numbers have no sign (Conventions: numbers).',
      setMeta(base(), { size: '+7' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-size-decimal',
      'A hash with `size 7.0`: numbers are integers without a decimal point (Conventions: numbers).',
      setMeta(base(), { size: '7.0' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-size-too-large',
      'A hash with `size 9007199254740992`: numbers are at most 2^53 − 1 (Conventions: numbers).',
      setMeta(base(), { size: '9007199254740992' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-created-leading-zero',
      `A hash with \`created 0${T}\`: numbers have no leading zeros (Conventions: numbers).`,
      setMeta(base(), { created: `0${T}` }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-hbi-exponent',
      'A hash with `hbi 1e3`: numbers are plain decimal digits (Conventions: numbers).',
      setMeta(base(), { hbi: '1e3' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-crc32-uppercase',
      'A hash whose `crc32` is the right CRC in uppercase: uppercase hex is damage (Conventions: CRC-32).',
      setMeta(base(), { crc32: crcOfAll.toUpperCase() }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-writer-short',
      'A hash whose `writer` has 15 hex digits: the token is 16 hex (The metadata hash).',
      setMeta(base(), { writer: WRITER.slice(1) }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-trim-two',
      'A hash with `trim 2`: trim is `1` or `0` (The metadata hash).',
      setMeta(base(), { trim: '2' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-metadata-array',
      'A hash whose `metadata` is a JSON array: it is a JSON object of strings (The metadata hash).',
      setMeta(base(), { metadata: '["a"]' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-metadata-number',
      'A hash whose `metadata` maps a name to a number: it is a JSON object of strings (The metadata hash).',
      setMeta(base(), { metadata: '{"a":1}' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-consumers-not-json',
      'A hash with `consumers eu-1`: a JSON count or list of names, or empty (The metadata hash).',
      setMeta(base(), { consumers: 'eu-1' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-lost-zero',
      'A hash with `lost 0`: lost is `1`, absent otherwise (The metadata hash).',
      setMeta(base(), { lost: '0' }),
      fails(CORRUPT, all),
    ),
    vector(
      'stream-gone',
      'A complete hash whose chunk stream does not exist (What a reader must reject: a stream that is gone while ' +
        'its hash remains).',
      { ...base(), stream: [] },
      fails(CORRUPT),
    ),
    vector(
      'complete-without-end-record',
      'A hash that says complete over a stream without an end record (Which record wins; What a reader must reject).',
      removeEntries(base(), '2-2'),
      fails(CORRUPT, all),
    ),
  ];
}

function endRecordGroup() {
  const all = 'abcdefghij';
  const crcOfAll = crcHex(all);
  const end = (f, fields) => setFields(f, '3-2', fields);
  const endFields = (changes) =>
    Object.entries({ end: '10', chunks: '3', crc32: crcOfAll, ...changes })
      .filter(([, v]) => v !== undefined)
      .map(([n, v]) => [n, v]);
  const other = crcHex('abcdefghiJ');
  return [
    vector(
      'end-without-crc32',
      'An end record `end 10 chunks 3` without its `crc32` field (The chunk stream: a field missing).',
      end(mixed(), endFields({ crc32: undefined })),
      fails(CORRUPT, all),
    ),
    vector(
      'end-crc32-uppercase',
      'An end record whose whole-file CRC is written in uppercase (Conventions: uppercase hex is damage).',
      end(mixed(), endFields({ crc32: crcOfAll.toUpperCase() })),
      fails(CORRUPT, all),
    ),
    vector(
      'end-size-leading-zero',
      'An end record `end 010 …`: numbers have no leading zeros (Conventions: numbers).',
      end(mixed(), endFields({ end: '010' })),
      fails(CORRUPT, all),
    ),
    vector(
      'end-size-trailing-space',
      'An end record `end "10 " …`: numbers have no spaces (Conventions: numbers).',
      end(mixed(), endFields({ end: '10 ' })),
      fails(CORRUPT, all),
    ),
    vector(
      'end-size-too-large',
      'The end record and the hash say 11 bytes, the pieces hold 10: size must equal the bytes of all pieces ' +
        '(The end record).',
      setMeta(end(mixed(), endFields({ end: '11' })), { size: '11' }),
      fails(CORRUPT, all),
    ),
    vector(
      'end-size-too-small',
      'The end record and the hash say 9 bytes, the pieces hold 10 (The end record).',
      setMeta(end(mixed(), endFields({ end: '9' })), { size: '9' }),
      fails(CORRUPT, all),
    ),
    vector(
      'end-chunks-disagree',
      "End record `3-2` says `chunks 4` (the hash too): chunks must equal N, the end record's own record number " +
        '(The end record).',
      setMeta(end(mixed(), endFields({ chunks: '4' })), { chunks: '4' }),
      fails(CORRUPT, all),
    ),
    vector(
      'end-crc32-mismatch',
      "Every piece is intact, but the end record's whole-file CRC (and the hash's) is another file's: a reader " +
        'that read from byte 0 checks it (The end record).',
      setMeta(end(mixed(), endFields({ crc32: other })), { crc32: other }),
      fails(CORRUPT, all),
    ),
    vector(
      'end-fields-reordered',
      'An end record as `chunks 3 end 10 crc32 …`: fields in another order (The chunk stream).',
      end(mixed(), [['chunks', '3'], ...endFields({ chunks: undefined })]),
      fails(CORRUPT, all),
    ),
    vector(
      'end-extra-field',
      'An end record with a fourth field `at <ms>`: a field added (The chunk stream).',
      end(mixed(), [...endFields({}), ['at', String(T)]]),
      fails(CORRUPT, all),
    ),
    vector(
      'end-at-piece-id',
      'Chunk 1 holds "ef" (short) and the end record is `1-3`, a piece\'s id: after a short chunk the end record ' +
        'is `2-2` (rule 2).',
      addEntry(removeEntries(file({ chunks: [['abcd'], ['ef']] }), '2-2'), '1-3', [
        ['end', '6'],
        ['chunks', '2'],
        ['crc32', crcHex('abcdef')],
      ]),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'hash-size-disagrees',
      'The hash says size 11, the end record 10: once complete the hash must equal the end record (Which record wins).',
      setMeta(mixed(), { size: '11' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-chunks-disagrees',
      'The hash says 4 chunks, the end record 3 (Which record wins).',
      setMeta(mixed(), { chunks: '4' }),
      fails(CORRUPT, all),
    ),
    vector(
      'hash-crc32-disagrees',
      "The hash's crc32 has one bit flipped against the end record's (Which record wins).",
      setMeta(mixed(), { crc32: flipHex(crcOfAll) }),
      fails(CORRUPT, all),
    ),
    vector(
      'piece-after-end',
      'A piece `4-2` after the end record `3-2`: nothing follows an end record (rule 5).',
      addEntry(mixed(), '4-2', piece('k')),
      fails(CORRUPT, all),
    ),
    vector(
      'end-after-end',
      'A second end record `3-3` after the first (rule 5).',
      addEntry(mixed(), '3-3', endFields({})),
      fails(CORRUPT, all),
    ),
    vector(
      'abort-after-end',
      'An abort record `4-2` after the end record (rule 5).',
      addEntry(mixed(), '4-2', [['abort', 'too late']]),
      fails(CORRUPT, all),
    ),
    vector(
      'empty-file-crc-wrong',
      'An empty file whose end record (and hash) say crc32 ffffffff: the CRC of no bytes is 00000000 ' +
        '(The end record).',
      setMeta(setField(file(), '0-2', 'crc32', 'ffffffff'), { crc32: 'ffffffff' }),
      fails(CORRUPT),
    ),
    vector(
      'empty-file-end-numbered-1',
      'An empty file whose end record is `1-2 end 0 chunks 1`: the first record after the header is `0-2` (rule 3).',
      setMeta(addEntry(removeEntries(file(), '0-2'), '1-2', endFields({ end: '0', chunks: '1', crc32: '00000000' })), {
        chunks: '1',
      }),
      fails(CORRUPT),
    ),
  ];
}

function abortGroup() {
  const aborted = (options = {}) => file({ state: 'aborted', chunks: [['abcd'], ['ef']], ...options });
  return [
    vector(
      'abort-in-short-chunk',
      'Chunk 0 full, chunk 1 holds "ef", then the abort record `2-2` (M = 1 + 1): ERR_REDIS_FILE_ABORTED after ' +
        'the stored bytes (The abort record).',
      aborted(),
      fails(ABORTED, 'abcdef'),
    ),
    vector(
      'abort-after-header',
      'The header was the last id given out, so the abort record is `0-2` (M = 0) (The abort record).',
      file({ state: 'aborted' }),
      fails(ABORTED),
    ),
    vector(
      'abort-after-full-chunk',
      'Two full chunks, then the abort record `2-2` (The abort record).',
      aborted({ chunks: [['abcd'], ['efgh']] }),
      fails(ABORTED, 'abcdefgh'),
    ),
    vector(
      'abort-follow',
      'Following an aborted file ends with ERR_REDIS_FILE_ABORTED at its abort record, without waiting.',
      aborted(),
      fails(ABORTED, 'abcdef'),
      { follow: true },
    ),
    vector(
      'abort-lost',
      'An abort record while the hash says aborted with `lost 1`: acknowledged data was lost, so ' +
        'ERR_REDIS_FILE_CORRUPT, not ABORTED (Which record wins).',
      setMeta(aborted(), { lost: '1' }),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'abort-after-lost-pieces',
      'Pieces `1-2` and `1-3` were lost after being given out, so the abort record is `2-2`, but the hash says ' +
        'aborted (without lost): the reader reports ABORTED at once and reads nothing (Which record wins).',
      removeEntries(aborted({ chunks: [['abcd'], ['ef', 'gh']] }), '1-2', '1-3'),
      fails(ABORTED),
    ),
    vector(
      'abort-extra-field',
      'An abort record `abort <reason> at <ms>` in a file the hash says is aborted: ABORTED at once, the stream ' +
        'is not read (Which record wins).',
      setField(aborted(), '2-2', 'at', String(T)),
      fails(ABORTED),
    ),
    vector(
      'abort-renamed-field',
      'An abort record as `reason <text>` in a file the hash says is aborted: ABORTED at once (Which record wins).',
      setFields(aborted(), '2-2', [['reason', 'writer destroyed']]),
      fails(ABORTED),
    ),
    vector(
      'abort-at-piece-id',
      'Chunk 1 holds "ef" and the abort record is `1-3`, a piece\'s id, in a file the hash says is aborted: ' +
        'ABORTED at once (Which record wins).',
      addEntry(removeEntries(aborted(), '2-2'), '1-3', [['abort', 'writer destroyed']]),
      fails(ABORTED),
    ),
    vector(
      'piece-after-abort',
      'A piece `2-3` after the abort record `2-2` in a file the hash says is aborted: ABORTED at once (Which ' +
        'record wins).',
      addEntry(aborted(), '2-3', piece('gh')),
      fails(ABORTED),
    ),
    vector(
      'abort-hash-complete',
      'The stream ends in an abort record while the hash says complete (Which record wins).',
      setMeta(aborted(), { state: 'complete', size: '6', chunks: '2', crc32: crcHex('abcdef') }),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'abort-hash-writing',
      'The stream ends in an abort record while the hash says writing (Which record wins).',
      setMeta(aborted(), { state: 'writing' }),
      fails(CORRUPT, 'abcdef'),
    ),
    vector(
      'hash-aborted-without-abort-record',
      'A hash in state aborted (without lost) over a stream of pieces only: ERR_REDIS_FILE_ABORTED (What a reader ' +
        'must reject).',
      aborted({ ending: 'none' }),
      fails(ABORTED, 'abcdef'),
    ),
  ];
}

function gapsGroup() {
  const writing = () => file({ state: 'writing', chunks: [['abcd'], ['efgh'], ['ij']] });
  return [
    vector(
      'gap-writing-dead-writer',
      "A file in state writing whose writer's last heartbeat is long past, with chunk 1 missing, read with " +
        'follow: false: the gap is ERR_REDIS_FILE_CORRUPT at once, not a wait (Gaps).',
      removeEntries(writing(), '1-2'),
      fails(CORRUPT, 'abcd'),
    ),
    vector(
      'gap-writing-dead-writer-follow',
      "The same, followed: the writer's lease has lapsed (hb far more than 3 × hbi in the past), so the gap is " +
        'ERR_REDIS_FILE_CORRUPT at once (Gaps).',
      removeEntries(writing(), '1-2'),
      fails(CORRUPT, 'abcd'),
      { follow: true },
    ),
    vector(
      'gap-writing-in-chunk',
      'A file in state writing, chunk 1 of 1-byte pieces with `1-3` missing, read with follow: false (Gaps).',
      removeEntries(file({ state: 'writing', chunks: [['abcd'], ['e', 'f', 'g']] }), '1-3'),
      fails(CORRUPT, 'abcde'),
    ),
    vector(
      'gap-writing-after-header',
      'A file in state writing whose first piece `0-2` is missing: `1-2` follows the header (Gaps).',
      removeEntries(writing(), '0-2'),
      fails(CORRUPT),
    ),
    vector(
      'gap-complete-follow',
      'A complete file with chunk 1 missing, followed: in a complete file a gap is ERR_REDIS_FILE_CORRUPT at ' +
        'once (Gaps).',
      removeEntries(mixed(), '1-2', '1-3'),
      fails(CORRUPT, 'abcd'),
      { follow: true },
    ),
    vector(
      'gap-aborted-follow',
      'An aborted file with chunk 1 missing before its abort record, followed: the hash says aborted, so ' +
        'ABORTED at once, without reading (Which record wins).',
      removeEntries(file({ state: 'aborted', chunks: [['abcd'], ['efgh'], ['ij']] }), '1-2'),
      fails(ABORTED),
      { follow: true },
    ),
  ];
}

function rangesGroup() {
  const all = 'abcdefghijklmn';
  // "abcd" | "ef" "gh" | "i" "jk" "l" | "mn": piece boundaries at 4 6 8 9 11 12.
  const layout = () => file({ chunks: [['abcd'], ['ef', 'gh'], ['i', 'jk', 'l'], ['mn']] });
  const range = (name, description, start, end, f = layout()) =>
    vector(name, description, f, ok(all.slice(start, end === null ? undefined : end + 1)), { start, end });
  const otherCrc = crcHex('another file');
  return [
    range('range-first-byte', 'Bytes 0 to 0 (`end` is inclusive, as in fs).', 0, 0),
    range('range-inside-piece', 'Bytes 1 to 2, inside the single piece of chunk 0.', 1, 2),
    range('range-exact-piece', 'Bytes 9 to 10: exactly the piece `2-3` ("jk").', 9, 10),
    range('range-across-pieces', 'Bytes 5 to 6, across the piece boundary inside chunk 1 ("ef" | "gh").', 5, 6),
    range('range-across-chunks', 'Bytes 3 to 4, across the boundary of chunks 0 and 1.', 3, 4),
    range('range-across-chunks-and-pieces', 'Bytes 6 to 12: from inside a piece of chunk 1 into chunk 3.', 6, 12),
    range('range-start-in-piece-to-end', 'From byte 10 (inside piece "jk") to the end of the file.', 10, null),
    range('range-start-at-chunk', 'From byte 8, the first byte of chunk 2, to the end.', 8, null),
    range('range-last-byte', 'Bytes 13 to 13, the last byte.', 13, 13),
    range('range-end-last-byte', 'Bytes 0 to 13: `end` is the last byte, so the whole file.', 0, 13),
    range(
      'range-start-at-size',
      'From byte 14 of a 14-byte file: nothing to read, an empty read (README: only a `start` beyond the end fails).',
      14,
      null,
    ),
    vector(
      'range-end-at-size',
      '`end` 14 of a 14-byte file: an `end` at or past the end of the file reads to the end, as fs does (Reading).',
      layout(),
      ok(all),
      { start: 0, end: 14 },
    ),
    vector(
      'range-end-past-size',
      '`end` 100 of a 14-byte file, from byte 4: the bytes from 4 to the end (Reading).',
      layout(),
      ok(all.slice(4)),
      { start: 4, end: 100 },
    ),
    vector(
      'range-start-past-size',
      '`start` 15 of a 14-byte file: ERR_REDIS_FILE_RANGE (Reading).',
      layout(),
      fails(RANGE),
      { start: 15, end: null },
    ),
    vector('range-empty-file-end', '`end` 0 of an empty file: nothing, as fs reads (Reading).', file(), ok(''), {
      start: 0,
      end: 0,
    }),
    vector(
      'range-bit-flip',
      'Bytes 4 to 9 where piece `2-2` ("i") has a flipped bit: the CRC is checked on byte ranges too, and none of ' +
        "the piece's bytes is delivered (Pieces).",
      setField(layout(), '2-2', 'd', flip('i', 0)),
      fails(CORRUPT, 'efgh'),
      { start: 4, end: 9 },
    ),
    vector(
      'range-bit-flip-start-piece',
      'Bytes 5 to 6 where piece `1-2` ("ef"), holding the first byte wanted, has a flipped bit: nothing is ' +
        'delivered (Pieces).',
      setField(layout(), '1-2', 'd', flip('ef', 0, 1)),
      fails(CORRUPT),
      { start: 5, end: 6 },
    ),
    vector(
      'range-whole-crc-from-chunk-0',
      "From byte 1 to the end of a file whose whole-file CRC (end record and hash alike) is another file's: " +
        'the read took every piece from the first one, so it checks the whole-file CRC (The end record).',
      setMeta(setField(layout(), '4-2', 'crc32', otherCrc), { crc32: otherCrc }),
      fails(CORRUPT, all.slice(1)),
      { start: 1, end: null },
    ),
    vector('range-follow', 'Bytes 3 to 4 of a complete file, followed.', layout(), ok('de'), {
      start: 3,
      end: 4,
      follow: true,
    }),
  ];
}

function trimmedGroup() {
  // Consumer eu-1 consumed chunk 0 under a memory limit: the header and `0-2` were trimmed.
  const trimmed = () =>
    setMeta(removeEntries(file({ chunks: [['abcd'], ['efgh'], ['ij']] }), '0-1', '0-2'), {
      consumers: '["eu-1"]',
      trim: '1',
      'pos:eu-1': '1',
      trimmed: '1',
      dropped: '2',
    });
  return [
    vector(
      'trimmed-read-past',
      'Chunk 0 and the header were trimmed (`trimmed 1`, `dropped 2`): a read from chunk 1 takes the chunk size ' +
        'from the hash and reads to the end (The metadata hash: trimmed).',
      trimmed(),
      ok('efghij'),
      { start: 4, end: null },
    ),
    vector(
      'trimmed-read-from-start',
      'The same file read from byte 0: the chunks the read needs were trimmed (README: ERR_REDIS_FILE_NOT_FOUND).',
      trimmed(),
      fails(NOT_FOUND),
    ),
  ];
}

const GROUPS = {
  valid: ['Files a reader must read, each with the bytes it returns.', validGroup],
  pieces: ['Damaged, missing and misplaced pieces.', piecesGroup],
  header: ['The header entry `0-1`: its version, its exact fields, its agreement with the hash.', headerGroup],
  hash: ['The metadata hash: its version, required fields and their forms, its agreement with the stream.', hashGroup],
  'end-record': ['The end record: its fields, its numbers, its CRC, what may follow it.', endRecordGroup],
  abort: ['Abort records: where they stand, what they mean with the hash, what may follow them.', abortGroup],
  gaps: ['Missing entries by state and follow mode.', gapsGroup],
  ranges: ['Byte ranges of a complete file (start and end inclusive, as in fs).', rangesGroup],
  trimmed: ['Files whose first chunks consumers trimmed under a memory limit.', trimmedGroup],
};

// ---------------------------------------------------------------------------------------------
// Output.

function jsonValue(value) {
  if (Buffer.isBuffer(value)) return { hex: value.toString('hex') };
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v)]));
  }
  return value;
}

function check(vectors, names) {
  for (const v of vectors) {
    if (names.has(v.name)) throw new Error(`two vectors are named ${v.name}`);
    names.add(v.name);
    if (!/^[a-z0-9-]+$/.test(v.name)) throw new Error(`vector name ${v.name}: use a-z, 0-9 and -`);
    if (v.meta === null && v.stream.length > 0) throw new Error(`${v.name}: a stream needs a hash to be found`);
    for (const value of Object.values(v.meta ?? {})) {
      if (typeof value !== 'string') throw new Error(`${v.name}: hash values are strings`);
    }
    let previous = '0-0';
    for (const e of v.stream) {
      if (compareIds(e.id, previous) <= 0) throw new Error(`${v.name}: XADD cannot store ${e.id} after ${previous}`);
      if (e.fields.length === 0) throw new Error(`${v.name}: entry ${e.id} has no field`);
      previous = e.id;
    }
  }
}

const WIDTH = 120;

/**
 * JSON with every array or object on one line when it fits in WIDTH (counting `lead`, the characters
 * before it on its first line), else one member per line.
 */
function format(value, indent = '', lead = 0) {
  const inline = JSON.stringify(value, null, 1)
    .replace(/\n\s*/g, ' ')
    .replace(/([[{]) /g, '$1')
    .replace(/ ([\]}])/g, '$1');
  if (value === null || typeof value !== 'object' || indent.length + lead + inline.length <= WIDTH) return inline;
  const inner = `${indent}  `;
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + format(v, inner)).join(',\n')}\n${indent}]`;
  const members = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${format(v, inner, k.length + 4)}`);
  // An object of strings (the hash) fills its lines instead of taking one per field.
  if (Object.values(value).every((v) => typeof v === 'string')) {
    const lines = [];
    for (const member of members) {
      const last = lines.length - 1;
      if (last >= 0 && inner.length + lines[last].length + 2 + member.length <= WIDTH) lines[last] += `, ${member}`;
      else lines.push(member);
    }
    return `{\n${lines.map((line) => inner + line).join(',\n')}\n${indent}}`;
  }
  return `{\n${members.map((m) => inner + m).join(',\n')}\n${indent}}`;
}

/** The vector files: file name → text. */
export function render() {
  const names = new Set();
  const files = {};
  for (const [group, [description, build]] of Object.entries(GROUPS)) {
    const vectors = build();
    check(vectors, names);
    files[`${group}.json`] = `${format(jsonValue({ description, vectors }))}\n`;
  }
  return files;
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = join(here, 'vectors');
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(render())) writeFileSync(join(dir, name), text);
}
