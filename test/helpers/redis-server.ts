/**
 * Private redis-server processes for the tests: the launcher shared with the benchmarks and the
 * demo (scripts/lib/redis-launcher.mjs), under the names the tests import. See its declarations
 * for the safety nets that keep a server from outliving the test run.
 */
export {
  getFreePort,
  isPortFree,
  reapServers,
  RUN_DIR_ENV,
  startRedis,
  type RedisServer,
  type RedisTlsFiles,
  type StartRedisOptions,
} from '../../scripts/lib/redis-launcher.mjs';
