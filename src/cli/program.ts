/**
 * `redis-file`: the command line's grammar: the global options, every command with its arguments,
 * options and help, and the action that hands it to its module (put.ts, get.ts, files.ts,
 * channel.ts, receive.ts) through {@link run}.
 * @internal
 * @module
 */

import { readFileSync } from 'node:fs';
import { Command, Help, InvalidArgumentError, Option } from 'commander';
import { closeCommand, rmChannelCommand, type SendOptions, sendCommand } from './channel.js';
import {
  DEFAULT_PREFIX,
  DEFAULT_REDIS_TIMEOUT,
  DEFAULT_URL,
  type GlobalOptions,
  MAX_REDIS_TIMEOUT,
} from './connection.js';
import { EXIT, usageHint } from './errors.js';
import { expireCommand, lsCommand, mvCommand, type RmOptions, rmCommand, statCommand } from './files.js';
import { bytesArg, isPattern, literalKey, parseConsumers, parseDuration, parseMeta } from './format.js';
import { catCommand, getCommand, getPatternCommand, type ReadOptions } from './get.js';
import { EXAMPLES } from './help.js';
import { type PutOptions, type PutState, putCommand, putUsage, reportInterruptedPut } from './put.js';
import { type ReceiveOptions, receiveCommand } from './receive.js';
import { run } from './runtime.js';

/** The default --url, as the list the option holds (compared by identity: a given --url replaces it). */
const DEFAULT_URLS: readonly string[] = Object.freeze([DEFAULT_URL]);

function version(): string {
  try {
    // dist/esm/cli/program.js → the package's root.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The program: `setExit` receives the exit code of the command that ran; `crc` names the CRC-32 implementation. */
export function buildProgram(setExit: (code: number) => void, crc: string): Command {
  const program = new Command('redis-file');
  program
    .description(
      'Store files in Redis and read them back, also while they are being written; send files to many receivers.',
    )
    .version(
      `${version()} (CRC-32 by ${crc})`,
      '-V, --version',
      'print the version and which CRC-32 implementation runs',
    )
    .helpOption('-h, --help', 'print help for the command')
    // A command of our own, not commander's: commander's printed the whole help, and no error, for
    // a command that does not exist.
    .helpCommand(false)
    .exitOverride()
    .configureHelp({
      showGlobalOptions: true,
      // The list of commands without "[options]" (each command's own help has it): with it, the
      // longest entry (send's) would squeeze every summary into two lines.
      subcommandTerm: (cmd: Command) => new Help().subcommandTerm(cmd).replace(' [options]', ''),
    })
    .addOption(
      new Option(
        '--url <url>',
        'Redis to use: a redis:// or rediss:// (TLS) URL, with user and password if needed; repeat it (or separate URLs by commas) to give the seeds of a cluster',
      )
        .env('REDIS_URL')
        .argParser((text: string, previous: readonly string[] | undefined) => {
          const urls = text.split(/[\s,]+/).filter(Boolean);
          if (urls.length === 0) throw new InvalidArgumentError('no URL given');
          // The default is replaced, not added to.
          return previous === undefined || previous === DEFAULT_URLS ? urls : [...previous, ...urls];
        })
        .default(DEFAULT_URLS, DEFAULT_URL),
    )
    .addOption(
      new Option(
        '--cluster',
        'Redis is a cluster: follow its slots and failovers from the --url seed(s) (implied by several URLs)',
      ),
    )
    .addOption(
      new Option(
        '--redis-timeout <seconds>',
        'once connected, how long Redis may stay unreachable before the command fails (or 30s, 2m, …)',
      )
        .env('REDIS_FILE_REDIS_TIMEOUT')
        .argParser((t: string) => parseDuration(t, 's', 1, MAX_REDIS_TIMEOUT))
        .default(DEFAULT_REDIS_TIMEOUT, '20s'),
    )
    .addOption(
      new Option('--prefix <prefix>', 'namespace of the Redis keys of every file')
        .argParser((text: string) => {
          if (/[{}]/.test(text)) throw new InvalidArgumentError('a prefix cannot hold { or }');
          return text;
        })
        .default(DEFAULT_PREFIX),
    );

  const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const quiet = (): Option => new Option('-q, --quiet', 'no progress bar');
  const gzip = (what: string): Option =>
    new Option('-z, --gzip', `gzip on the way in (stored with content encoding gzip)${what}`);
  const chunkSize = (): Option =>
    new Option('--chunk-size <bytes>', 'bytes per stored chunk; suffixes k, m, g (1024-based)')
      .argParser(bytesArg(1))
      .default(256 * 1024, '256k');
  const ttl = (): Option =>
    new Option('--ttl <seconds>', 'expire the file after this long (or 30m, 12h, 7d, …)').argParser((t) =>
      parseDuration(t, 's', 1),
    );
  const waitReplicas = (): Option =>
    new Option(
      '--wait-replicas <n>',
      'count each chunk as stored only once n replicas have it (WAIT): none is lost in a failover',
    ).argParser((text: string) => {
      if (!/^\d+$/.test(text) || Number(text) > 1024)
        throw new InvalidArgumentError('expected a number of replicas, 0 to 1024');
      return Number(text);
    });

  program
    .command('put')
    .summary('store local files (or standard input) at keys')
    .description(
      'Store a local file, or standard input with -, at a key; with a key ending in /, under that key prefix by its ' +
        'base name. Several files go under a key prefix ending in / by their base names, and with -r the files of a ' +
        'directory under a key prefix by their paths relative to it. A file becomes complete only once every byte is ' +
        'stored: a failed or interrupted upload (Ctrl-C) leaves it aborted, never half-written.',
    )
    .usage(
      [
        '[options] <path|-> <key>',
        'redis-file put [options] <path>... <prefix/>',
        'redis-file put [options] -r <dir> <prefix>',
      ].join('\n       '),
    )
    .argument('<path|->', 'file to store, or - for standard input; with -r, a directory')
    .argument('<key>', 'name of the file in Redis; ending in /, a key prefix the file goes under by its base name')
    .argument('[more...]', 'more files to store, the last argument then being the key prefix, ending in /')
    .option(
      '-r, --recursive',
      'store the files of a directory and its subdirectories, each at the key prefix + its path',
    )
    .addOption(gzip(''))
    .addOption(chunkSize())
    .addOption(ttl())
    .addOption(waitReplicas())
    .option(
      '-f, --overwrite',
      'replace a complete or aborted file stored at the key, or one whose writer died (never one a live writer is writing)',
    )
    .option('--content-type <type>', 'MIME type stored with the file')
    .option('--meta <key=value>', 'metadata stored with the file (repeatable)', parseMeta)
    .addOption(quiet())
    .action(async (first: string, second: string, more: string[], o: PutOptions, cmd: Command) => {
      const g = globals(cmd);
      const paths = [first, second, ...more];
      const key = paths.pop()!;
      const wrong = putUsage(paths, key, o.recursive ?? false);
      if (wrong !== undefined) cmd.error(`error: ${wrong}`);
      const state: PutState = { key, count: 1, stored: 0 };
      setExit(
        await run(
          cmd,
          `put ${JSON.stringify(key)}`,
          g,
          (redis) => putCommand(redis, g, paths, key, o, state),
          (redis, err) => reportInterruptedPut(redis, g, state, err),
        ),
      );
    });

  const waitForCreate = (): Option =>
    new Option('--wait-for-create <ms>', 'wait this long for a file that does not exist yet (or 30s, 5m, …)')
      .argParser((t) => parseDuration(t, 'ms', 0))
      .default(0);
  const decompress = (): Option => new Option('-d, --decompress', 'gunzip a file stored gzipped (no-op otherwise)');

  program
    .command('get')
    .summary('write stored files to local files or stdout')
    .description(
      'Write the file stored at a key to a local file, or to standard output with - (the default). While the file is ' +
        'still being written, get follows it to its end. A local file appears only once complete (it is written under ' +
        'a temporary name, then renamed); a directory receives it under the last segment of the key. A pattern ' +
        '(* ? [abc]; \\ escapes them) writes every file it matches into a directory, each by its key without the ' +
        "pattern's leading directories: get 'logs/*' out/ writes logs/2026/a.gz to out/2026/a.gz.",
    )
    .argument('<key>', 'name of the file in Redis, or a pattern (quote it in the shell)')
    .argument('[path|-]', 'where to write it, - for standard output', '-')
    .addOption(decompress().conflicts(['start', 'end']))
    .option('--no-follow', 'read what is stored now, even if the writer is not done')
    .addOption(new Option('--start <offset>', 'first byte to read (suffixes k, m, g)').argParser(bytesArg(0)))
    .addOption(new Option('--end <offset>', 'last byte to read, inclusive (suffixes k, m, g)').argParser(bytesArg(0)))
    .addOption(waitForCreate())
    .addOption(quiet())
    .action(async (key: string, path: string, o: ReadOptions, cmd: Command) => {
      if (o.start !== undefined && o.end !== undefined && o.end < o.start) {
        cmd.error(`error: --end (${o.end}) is less than --start (${o.start}); --end is the last byte, inclusive`);
      }
      if (isPattern(key)) {
        if (path === '-') {
          const hint = 'or escape * ? [ with \\ to name one file';
          cmd.error(`error: ${JSON.stringify(key)} is a pattern: give a directory to write the files into (${hint})`);
        }
        const flag = [
          o.start !== undefined && '--start',
          o.end !== undefined && '--end',
          (o.waitForCreate ?? 0) > 0 && '--wait-for-create',
        ].find((f) => f !== false);
        if (flag) cmd.error(`error: ${flag} reads one file; it does not go with a pattern`);
        const g = globals(cmd);
        setExit(await run(cmd, `get ${JSON.stringify(key)}`, g, (redis) => getPatternCommand(redis, g, key, path, o)));
        return;
      }
      const name = literalKey(key);
      const g = globals(cmd);
      setExit(await run(cmd, `get ${JSON.stringify(name)}`, g, (redis) => getCommand(redis, g, name, path, o)));
    });

  program
    .command('cat')
    .summary('print stored files, following one being written')
    .description(
      'Write the files stored at the keys to standard output, one after the other. Like tail -f, cat follows a file ' +
        'that is still being written, and ends when its writer completes it.',
    )
    .argument('<key...>', 'names of the files in Redis')
    .addOption(decompress())
    .addOption(waitForCreate())
    .addOption(quiet())
    .action(async (keys: string[], o: ReadOptions, cmd: Command) => {
      setExit(
        await run(cmd, `cat ${JSON.stringify(keys[0])}`, globals(cmd), (redis) =>
          catCommand(redis, globals(cmd), keys, o),
        ),
      );
    });

  program
    .command('stat')
    .summary('describe a stored file')
    .description('Describe the file stored at a key: state, size, chunks, encoding, metadata, checksum, times, expiry.')
    .argument('<key>', 'name of the file in Redis')
    .option('--json', 'print one JSON object (dates in ISO 8601, absent values null)')
    .action(async (key: string, o: { json?: boolean }, cmd: Command) => {
      setExit(
        await run(cmd, `stat ${JSON.stringify(key)}`, globals(cmd), (redis) =>
          statCommand(redis, globals(cmd), key, o),
        ),
      );
    });

  program
    .command('ls')
    .summary('list stored files')
    .description(
      'List the files whose keys match a Redis glob pattern (* ? [abc], \\ escapes), sorted by key: state, size, ' +
        'content encoding, last update (local time) and key; at a terminal, their count and total size follow on ' +
        'standard error. It uses SCAN, so it never blocks Redis.',
    )
    .argument('[pattern]', 'Redis glob on the keys (quote it in the shell)', '*')
    .option('--json', 'one JSON object per line, as stat --json prints, unsorted')
    .action(async (pattern: string, o: { json?: boolean }, cmd: Command) => {
      setExit(
        await run(cmd, `ls ${JSON.stringify(pattern)}`, globals(cmd), (redis) =>
          lsCommand(redis, globals(cmd), pattern, o),
        ),
      );
    });

  program
    .command('rm')
    .summary('remove stored files, by key or pattern')
    .description(
      'Remove the files stored at the keys, each in one atomic step, and every file a pattern matches (* ? [abc]; ' +
        '\\ escapes them), with a line that counts them. Readers following one fail; a writer still writing one ' +
        'stops, its file aborted. --dry-run prints the keys that would go instead.',
    )
    .argument('<key|pattern...>', 'names of the files in Redis, or patterns (quote them in the shell)')
    .option('-f, --force', 'do not fail for keys that hold no file, or patterns that match none')
    .option('-n, --dry-run', 'remove nothing: print the keys of the files that would be removed')
    .option('-q, --quiet', 'no line counting the files a pattern removed')
    .action(async (keys: string[], o: RmOptions, cmd: Command) => {
      setExit(
        await run(cmd, `rm ${JSON.stringify(keys[0])}`, globals(cmd), (redis) =>
          rmCommand(redis, globals(cmd), keys, o),
        ),
      );
    });

  program
    .command('expire')
    .summary('set or remove the expiry of a stored file')
    .description('Set the time to live of the file stored at a key, or remove it with "none".')
    .argument('<key>', 'name of the file in Redis')
    .argument('<seconds|none>', 'seconds from now (or 30m, 12h, 7d, …), or none to keep the file', (t: string) =>
      t.toLowerCase() === 'none' ? null : parseDuration(t, 's', 1),
    )
    .action(async (key: string, seconds: number | null, _o: unknown, cmd: Command) => {
      setExit(
        await run(cmd, `expire ${JSON.stringify(key)}`, globals(cmd), (redis) =>
          expireCommand(redis, globals(cmd), key, seconds),
        ),
      );
    });

  program
    .command('mv')
    .summary('rename a stored file')
    .description('Rename a stored file, atomically. A file still being written cannot be renamed.')
    .argument('<from>', 'current name')
    .argument('<to>', 'new name')
    .option('-f, --overwrite', 'replace a complete or aborted file stored at the new name')
    .action(async (from: string, to: string, o: { overwrite?: boolean }, cmd: Command) => {
      setExit(
        await run(cmd, `mv ${JSON.stringify(from)}`, globals(cmd), (redis) =>
          mvCommand(redis, globals(cmd), from, to, o),
        ),
      );
    });

  program
    .command('send')
    .summary("send files in order to a channel's receivers")
    .description(
      'Upload local files in order to a channel, announcing each as its upload starts, so that its receivers ' +
        '(redis-file receive) start on it at once. Each file is stored under a key of its own and announced under its ' +
        'base name. Ctrl-C leaves the file being sent aborted; receivers skip it.',
    )
    .argument('<channel>', 'name of the channel')
    .argument('<files...>', 'local files to send, in this order')
    .addOption(gzip('; a file already gzipped is sent as is'))
    .addOption(chunkSize())
    .addOption(ttl())
    .addOption(waitReplicas())
    .addOption(
      new Option(
        '--consumers <n|names>',
        'delete each file once this many receivers, or those named (eu-1,eu-2), acknowledged it',
      ).argParser(parseConsumers),
    )
    .addOption(
      new Option(
        '--max-redis-memory <bytes>',
        "hold the upload back while Redis's used memory is above this (256m, 2g, …)",
      ).argParser(bytesArg(1)),
    )
    .option('--close', 'close the channel once every file is sent: its receivers then end')
    .addOption(quiet())
    .action(async (channel: string, files: string[], o: SendOptions, cmd: Command) => {
      setExit(
        await run(cmd, `send ${JSON.stringify(channel)}`, globals(cmd), (redis) =>
          sendCommand(redis, globals(cmd), channel, files, o),
        ),
      );
    });

  program
    .command('receive')
    .summary("receive a channel's files (--out or --exec)")
    .description(
      'Receive the files sent to a channel, in order, until the channel is closed: each is written to a directory ' +
        "(--out) or piped to a shell command (--exec), and acknowledged once that is done. The receiver's position " +
        'is kept in Redis under its --consumer name: run again, it starts with the first file it had not acknowledged. ' +
        'Prints one line per file received on standard error.',
    )
    .argument('<channel>', 'name of the channel')
    .requiredOption('--consumer <name>', "required: this receiver's name, under which Redis keeps its position")
    .option('-o, --out <dir>', 'write each file to <dir>/<name> (whole files only: via a temporary file and a rename)')
    .option(
      '-e, --exec <command>',
      'pipe each file to this shell command, its name in $RFS_NAME; a file counts as received once the command exits 0',
    )
    .addOption(new Option('-d, --decompress', 'gunzip the files stored gzipped, and drop their .gz'))
    .option('-q, --quiet', 'no line per file received')
    .action(async (channel: string, o: ReceiveOptions, cmd: Command) => {
      if ((o.out === undefined) === (o.exec === undefined))
        cmd.error('error: give exactly one of --out <dir> and --exec <command>');
      if (o.out === '' || o.exec?.trim() === '') cmd.error(`error: --${o.out === '' ? 'out' : 'exec'} cannot be empty`);
      // Before --out is created.
      if (channel === '') cmd.error('error: the channel name cannot be empty');
      setExit(
        await run(cmd, `receive ${JSON.stringify(channel)}`, globals(cmd), (redis) =>
          receiveCommand(redis, globals(cmd), channel, o),
        ),
      );
    });

  program
    .command('close')
    .summary('close a channel: its receivers end')
    .description(
      'Close a channel: each receiver ends (exit 0) once it has received every file sent before the close. A channel ' +
        'sent to again after a close is open again.',
    )
    .argument('<channel>', 'name of the channel')
    .action(async (channel: string, _o: unknown, cmd: Command) => {
      setExit(
        await run(cmd, `close ${JSON.stringify(channel)}`, globals(cmd), (redis) =>
          closeCommand(redis, globals(cmd), channel),
        ),
      );
    });

  program
    .command('rm-channel')
    .summary("remove a channel with its receivers' positions")
    .description(
      "Remove a channel's log of announced files with every receiver's position in it. The files themselves go " +
        'with their acknowledgements (send --consumers) or their expiry (send --ttl).',
    )
    .argument('<channel>', 'name of the channel')
    .option('-f, --force', 'do not fail when there is no such channel')
    .action(async (channel: string, o: { force?: boolean }, cmd: Command) => {
      setExit(
        await run(cmd, `rm-channel ${JSON.stringify(channel)}`, globals(cmd), (redis) =>
          rmChannelCommand(redis, globals(cmd), channel, o),
        ),
      );
    });

  program
    .command('help')
    .argument('[command]')
    .description('print help for a command')
    .action((name: string | undefined) => {
      const cmd = program.commands.find((c) => name !== undefined && (c.name() === name || c.aliases().includes(name)));
      if (name === undefined) program.help();
      else if (cmd === undefined)
        program.error(`error: unknown command '${name}'`, { exitCode: EXIT.usage, code: 'commander.unknownCommand' });
      else cmd.help();
    });

  program.addHelpText('after', EXAMPLES);

  // A usage error names the command's usage and where to read more.
  for (const cmd of program.commands) cmd.showHelpAfterError(usageHint(cmd));
  program.showHelpAfterError('Run "redis-file --help" for the commands.');
  return program;
}
