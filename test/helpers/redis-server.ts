/**
 * Private redis-server processes for the tests: the launcher shared with the benchmarks and the
 * demo (scripts/lib/redis-launcher.mjs), under the names the tests import. See its declarations
 * for the safety nets that keep a server from outliving the test run.
 */
export {
  getFreePort,
  isPortFree,
  type RedisServer,
  type RedisTlsFiles,
  RUN_DIR_ENV,
  reapServers,
  type StartRedisOptions,
  startRedis,
} from '../../scripts/lib/redis-launcher.mjs';
