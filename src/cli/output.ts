/**
 * `redis-file`: what a command writes: to stdout (waiting while the pipe is full, and quietly done
 * when its reader goes), a line on stderr over the progress bar, and the report of an error.
 * @internal
 * @module
 */

import { inspect } from 'node:util';
import { describe, EXIT, isExpected } from './errors.js';
import { barActive, stopActiveBar } from './progress.js';

export const DEBUG = /^(1|true|yes|on)$/i.test(process.env.REDIS_FILE_DEBUG ?? '');

/** A reader downstream closed our stdout (`| head -c 10`): nothing more to say, stop quietly. */
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') {
    stopActiveBar();
    process.exit(EXIT.ok);
  }
});

/** Write to stdout, waiting while the pipe is full. */
export async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) {
    await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

export function warn(line: string): void {
  // Over a progress bar, the line goes where the bar was; the bar is drawn again under it.
  const clear = barActive() ? '\r\x1b[K' : '';
  process.stderr.write(`${clear}redis-file: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
}

/**
 * Print one line for an expected error (returns true), or the stack of an unexpected one
 * (returns false). With REDIS_FILE_DEBUG=1 the full error, with its cause, follows.
 */
export function report(err: unknown, context: string): boolean {
  const expected = isExpected(err);
  if (expected) {
    warn(describe(err as Error, context));
  } else {
    warn(`${context}: unexpected error (a bug; please report it with this output):`);
  }
  if (DEBUG || !expected) process.stderr.write(`${inspect(err, { depth: 6 })}\n`);
  return expected;
}
