import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
    // Starts one shared redis-server for the run (inject('redisUrl')) and stops it.
    globalSetup: ['./test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    // Test files run in parallel (each uses its own keys, see uniqueKey()); the default
    // would be one worker on a 2-core machine.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
