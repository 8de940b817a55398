// The demo's command line: its usage text and the parsed, checked options.

import { parseArgs } from 'node:util';
import { DemoError } from './lifecycle.mjs';

export const USAGE = `usage: node scripts/demo.mjs [options]

  --size-mib N         total size of the log files, as sent and stored, in MiB, approximate (default 24)
  --receivers N        number of receiver processes, 1 to 32 (default 4); --readers is an alias
  --channel NAME       channel name (default demo-logs, plus a random suffix with REDIS_URL)
  --seed N             seed of the generated data (default 1)
  --kill-receiver N    crash drill: SIGKILL receiver N in the middle of its second file, then start it
                       again under the same consumer name (it resumes at that file)
  -h, --help           show this help

Uses the Redis server at REDIS_URL when set; otherwise starts a private redis-server.`;

/** The options in `argv`, or `{ help: true }`; a bad one throws a DemoError that names it. */
export function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'size-mib': { type: 'string', default: '24' },
        receivers: { type: 'string' },
        readers: { type: 'string' },
        channel: { type: 'string' },
        seed: { type: 'string', default: '1' },
        'kill-receiver': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new DemoError(`${err.message.split('\n')[0]} (see --help)`);
  }
  if (values.help) return { help: true };
  const sizeMiB = Number(values['size-mib']);
  if (!(Number.isFinite(sizeMiB) && sizeMiB >= 0.01 && sizeMiB <= 4096)) {
    throw new DemoError(`--size-mib must be a number from 0.01 to 4096, got ${JSON.stringify(values['size-mib'])}`);
  }
  if (values.receivers !== undefined && values.readers !== undefined && values.receivers !== values.readers) {
    throw new DemoError('--readers is an alias of --receivers: give one of them');
  }
  const flag = values.receivers === undefined && values.readers !== undefined ? 'readers' : 'receivers';
  const receiversText = values.receivers ?? values.readers ?? '4';
  const receivers = Number(receiversText);
  if (!(/^\d+$/.test(receiversText) && receivers >= 1 && receivers <= 32)) {
    throw new DemoError(`--${flag} must be an integer from 1 to 32, got ${JSON.stringify(receiversText)}`);
  }
  const seed = Number(values.seed);
  if (!(/^\d+$/.test(values.seed) && seed <= 0xffffffff)) {
    throw new DemoError(`--seed must be an integer from 0 to 4294967295, got ${JSON.stringify(values.seed)}`);
  }
  if (values.channel !== undefined && values.channel.length === 0) throw new DemoError('--channel must not be empty');
  let killReceiver;
  if (values['kill-receiver'] !== undefined) {
    killReceiver = Number(values['kill-receiver']);
    if (!(/^\d+$/.test(values['kill-receiver']) && killReceiver >= 1 && killReceiver <= receivers)) {
      throw new DemoError(
        `--kill-receiver must be a receiver's number, from 1 to ${receivers}, ` +
          `got ${JSON.stringify(values['kill-receiver'])}`,
      );
    }
  }
  return { help: false, sizeMiB, receivers, seed, channel: values.channel, killReceiver };
}
