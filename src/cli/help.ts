/**
 * The examples and notes at the end of `redis-file --help`.
 * @internal
 * @module
 */

import { DEFAULT_URL } from './connection.js';

/** @internal */
export const EXAMPLES = `
Examples:
  redis-file put access.log.gz logs/2026-11-30.gz   # a .gz is stored as is
  tar cz src | redis-file put - backups/src.tgz     # standard input
  redis-file put --gzip --ttl 7d big.csv tmp/big.csv
  redis-file put a.log b.log logs/                  # logs/a.log, logs/b.log
  redis-file put -r ./site www                      # www/<path under ./site>
  redis-file get logs/2026-11-30.gz copy.gz
  redis-file get -d logs/2026-11-30.gz | wc -l      # gunzip on the way out
  redis-file get 'logs/*' out/                      # out/<path under logs/>
  redis-file cat live/build.log                     # follow it while written
  redis-file ls 'logs/*'
  redis-file stat logs/2026-11-30.gz
  redis-file rm tmp/a tmp/b
  redis-file rm --dry-run 'tmp/*'                   # what rm 'tmp/*' removes

Channels: each receiver (on its machine) first, then the sender:
  redis-file receive logs --consumer eu-1 --out /srv/logs
  redis-file receive logs --consumer eu-2 -d --exec 'wc -l'  # $RFS_NAME: the name
  redis-file send logs --consumers 2 --ttl 1d --close app-1.log app-2.log.gz

Connection: --url, else REDIS_URL, else ${DEFAULT_URL}, e.g.
  REDIS_URL=rediss://user:secret@redis.example.com:6380/0 redis-file ls
  redis-file --url redis://10.0.0.1:7000 --url redis://10.0.0.2:7000 ls  # a cluster
  REDIS_URL=redis://10.0.0.1:7000 redis-file --cluster ls
Progress bar: on standard error when it is a terminal (off with --quiet).
Redis gone while a command runs: a line on standard error while it
  retries, and the command fails after --redis-timeout (default 20s).
Exit codes: 0 success, 1 failure (one line on standard error),
  2 usage error, 130 interrupted by Ctrl-C, 143 by SIGTERM (an upload
  is left aborted, a file being received is not acknowledged).`;
