#!/usr/bin/env node
/**
 * `redis-file`: the package's command. Stores files in Redis and reads them back with the library's
 * streams: put, get, cat (follow a file being written), stat, ls, rm, expire, mv; and sends files to
 * many receivers over channels: send, receive, close, rm-channel.
 *
 * Exit codes: 0 success; 1 failure (one line on stderr naming the key and the reason); 2 usage
 * error; 130 / 143 interrupted by SIGINT / SIGTERM (an upload is then marked aborted first; a file
 * being received is left unacknowledged).
 * Set REDIS_FILE_DEBUG=1 to print the stack (and cause) of every error.
 *
 * This file runs the program that program.ts builds; runtime.ts runs a command, with connection.ts,
 * stop.ts, errors.ts and output.ts for what every command shares, and put.ts, get.ts, files.ts,
 * channel.ts and receive.ts hold the commands.
 *
 * Not part of the library API: the package's entry point (index.ts) does not export it.
 * @internal
 * @module
 */

import { CommanderError } from 'commander';
import { crcImplementation } from '../index.js';
import { EXIT } from './errors.js';
import { DEBUG, report } from './output.js';
import { buildProgram } from './program.js';
import { onSignal, stopReason } from './stop.js';

/** How long the process may linger once the command is done before it is ended (see main). */
const LINGER_MS = 2000;

async function main(): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(
    (code) => {
      exitCode = code;
    },
    await crcImplementation(),
  );
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with code 0; everything else commander rejects is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    report(err, 'redis-file');
    return EXIT.failure;
  }
  return exitCode;
}

process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

main().then(
  (code) => {
    // Stopped (a signal, or Redis gone): the command has cleaned up what it could within its grace;
    // a stream that has not closed by now must not keep the process alive.
    if (stopReason() !== undefined) process.exit(code);
    process.exitCode = code;
    // Everything is closed by now and the process ends by itself. Should anything (a bug) keep
    // it alive, this unref'd timer ends it without holding it open otherwise.
    setTimeout(() => {
      if (DEBUG)
        process.stderr.write(
          `redis-file: still running after the end (a bug), held by: ${process.getActiveResourcesInfo().join(', ')}\n`,
        );
      process.exit(code);
    }, LINGER_MS).unref();
  },
  (err: unknown) => {
    report(err, 'redis-file');
    process.exit(EXIT.failure);
  },
);
