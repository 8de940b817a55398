/**
 * `redis-file get` and `cat`: one file to a local file or stdout, the files a pattern matches into
 * a directory, and files followed while they are written.
 * @internal
 * @module
 */

import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename as renameLocal, rm, stat as statLocal } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRedisReadStream, type Progress } from '../index.js';
import type { Client, GlobalOptions } from './connection.js';
import { EXIT, Failure, LocalFileError, UsageError } from './errors.js';
import { matching } from './files.js';
import { pathUnder, patternBase } from './format.js';
import { makeDirectories, partName } from './local.js';
import { report } from './output.js';
import { ProgressBar, wantBar } from './progress.js';
import { checked } from './runtime.js';
import { cleanUpOnSignal, closed, interrupt, orStopped, stopReason } from './stop.js';

const quote = (text: string): string => JSON.stringify(text);

export interface ReadOptions {
  decompress?: boolean;
  follow?: boolean;
  start?: number;
  end?: number;
  waitForCreate?: number;
  quiet?: boolean;
}

/** Read one file into `dest` (stdout when `undefined`), with a progress bar when wanted. */
async function readInto(
  redis: Client,
  g: GlobalOptions,
  key: string,
  o: ReadOptions,
  dest: Writable | undefined,
): Promise<void> {
  const showBar = wantBar(o.quiet, dest === undefined);
  const reader = checked(() =>
    createRedisReadStream(redis, key, {
      prefix: g.prefix,
      decompress: o.decompress ?? false,
      follow: o.follow ?? true,
      start: o.start,
      end: o.end,
      waitForCreate: o.waitForCreate,
      signal: interrupt.signal,
      progressInterval: showBar ? 100 : undefined,
    }),
  );
  let bar: ProgressBar | undefined;
  if (showBar) {
    reader.on('progress', ({ bytes, total }: Progress) => {
      // The stored size is known for a complete file; a range reads part of it.
      const expected =
        total === undefined ? undefined : Math.max(0, Math.min(o.end ?? Infinity, total - 1) - (o.start ?? 0) + 1);
      bar ??= new ProgressBar(key, expected);
      bar.update(bytes, expected);
    });
  }
  try {
    await orStopped(dest === undefined ? pipeline(reader, process.stdout, { end: false }) : pipeline(reader, dest));
    bar?.stop(true);
  } catch (err) {
    if (!reader.destroyed) reader.destroy(err as Error);
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    throw err;
  } finally {
    bar?.stop(false);
    await closed(reader);
  }
}

export async function getCommand(
  redis: Client,
  g: GlobalOptions,
  key: string,
  path: string,
  o: ReadOptions,
): Promise<void> {
  cleanUpOnSignal();
  if (path === '-') {
    await readInto(redis, g, key, o, undefined);
    return;
  }
  // A directory receives the file under the key's last path segment, as with cp.
  let target = path;
  const existing = await statLocal(path).catch(() => undefined);
  if (existing?.isDirectory()) {
    const name = basename(key);
    if (name === '' || name === '.' || name === '..')
      throw new UsageError(`${path} is a directory and the key has no file name to use in it`);
    target = join(path, name);
  } else if (/[/\\]$/.test(path)) {
    // Named as a directory (as cp takes `dir/`), and there is none: said before anything is read.
    throw new LocalFileError(`cannot write ${path}: ${existing ? 'not a directory' : 'no such directory'}`);
  }
  await getFile(redis, g, key, target, o);
}

/**
 * Read one file into a local file. A regular file is written to a temporary name and renamed when
 * complete, so that a failed or interrupted download never leaves a partial file behind; devices
 * and FIFOs are written to.
 */
async function getFile(redis: Client, g: GlobalOptions, key: string, target: string, o: ReadOptions): Promise<void> {
  const targetStat = await statLocal(target).catch(() => undefined);
  const direct = targetStat !== undefined && !targetStat.isFile() && !targetStat.isDirectory();
  const temp = direct ? target : join(dirname(target), partName(basename(target), randomBytes(6).toString('hex')));
  let handle: FileHandle;
  try {
    if (targetStat?.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    handle = await open(temp, direct ? 'w' : 'wx');
  } catch (err) {
    throw new LocalFileError(`cannot write ${target}: ${(err as Error).message}`, { cause: err });
  }
  const output = handle.createWriteStream();
  try {
    await readInto(redis, g, key, o, output);
    if (!direct) await renameLocal(temp, target);
  } catch (err) {
    // The pipeline destroyed it, unless the read failed before it started.
    output.destroy();
    await closed(output);
    if (!direct) await rm(temp, { force: true });
    throw err;
  }
}

/**
 * get of a pattern: each file it matches, in key order, to `dir`/<its key without the pattern's
 * fixed directories> (see {@link patternBase}), the directories made as needed. A key that would
 * not make a path inside `dir` (see {@link pathUnder}) is refused; it and any file that fails are
 * reported in a line each, and the others are still written (exit 1 at the end).
 */
export async function getPatternCommand(
  redis: Client,
  g: GlobalOptions,
  pattern: string,
  dir: string,
  o: ReadOptions,
): Promise<number> {
  cleanUpOnSignal();
  const keys = (await matching(redis, g, pattern)).map((f) => f.key);
  if (keys.length === 0) throw new Failure(`get ${quote(pattern)}: no file matches this pattern`);
  const base = patternBase(pattern);
  let failed = 0;
  for (const key of keys) {
    try {
      const parts = pathUnder(key.slice(base.length));
      if (parts === undefined) {
        const why = `its name under ${quote(base)} has an empty, . or .. segment, so it would not make a path inside ${dir}`;
        throw new Failure(`File ${quote(key)}: not written: ${why}`);
      }
      const target = join(dir, ...parts);
      try {
        await makeDirectories(dirname(target));
      } catch (err) {
        throw new LocalFileError(`cannot write ${target}: ${(err as Error).message}`, { cause: err });
      }
      await getFile(redis, g, key, target, o);
    } catch (err) {
      if (stopReason() || err instanceof UsageError) throw err;
      report(err, `get ${quote(key)}`);
      failed++;
    }
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

export async function catCommand(redis: Client, g: GlobalOptions, keys: string[], o: ReadOptions): Promise<void> {
  cleanUpOnSignal();
  for (const key of keys) await readInto(redis, g, key, { ...o, follow: true }, undefined);
}
