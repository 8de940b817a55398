import { defineConfig } from 'vitest/config';

/**
 * Test files that run twice: on the shared standalone server and on a shared Redis Cluster
 * (3 primaries, 3 replicas). They take their client from `connectAny()`.
 */
const onBothTopologies = [
  'test/roundtrip.test.ts',
  'test/follow.test.ts',
  'test/gzip.test.ts',
  'test/fanout.test.ts',
  'test/channel.test.ts',
  'test/book.test.ts',
  'test/manage.test.ts',
  'test/range.test.ts',
  'test/progress.test.ts',
  'test/backpressure.test.ts',
  'test/destroy.test.ts',
  'test/errors.test.ts',
  'test/flush.test.ts',
  'test/damage-follow.test.ts',
  'test/open.test.ts',
  'test/encoded-chunks.test.ts',
  'test/closed-client.test.ts',
];

/** Test files that need the shared cluster and run only there. */
const onClusterOnly = [
  'test/cli-cluster.test.ts',
  'test/shared-blocking-cluster.test.ts',
  'test/key-watch-cluster.test.ts',
  'test/connecting.test.ts',
];

/**
 * Test files that hand the package no client of their own choosing, so they run with ioredis only:
 * the CLI (ioredis only), the built package and the demo run in child processes, the Lua scripts'
 * own behaviour, the format's parsers and glob alone, the benchmarks' run order, and the source's layering. (The examples take the library under test from
 * REDIS_CLIENT, and run in every project.)
 */
const ioredisOnly = [
  'test/cli*.test.ts',
  'test/bench-cluster.test.ts',
  'test/bench-run-order.test.ts',
  'test/demo.test.ts',
  'test/format-numbers.test.ts',
  'test/glob.test.ts',
  'test/layering.test.ts',
  'test/pack.test.ts',
  'test/package.test.ts',
  'test/scripts.test.ts',
];

/**
 * The libraries whose clients the package accepts. Each test file (but {@link ioredisOnly}) runs
 * once per library: the tests hand the package `subject(client)` (test/helpers/clients.ts), a client
 * of the library that `RFS_CLIENT` names.
 */
const libraries = ['ioredis', 'node-redis', 'iovalkey'] as const;

/** The projects of one library: `standalone` and `cluster`, suffixed `:<library>` but for ioredis. */
function projectsOf(library: (typeof libraries)[number]) {
  const suffix = library === 'ioredis' ? '' : `:${library}`;
  const others = library === 'ioredis' ? [] : ioredisOnly;
  return [
    {
      extends: true as const,
      test: {
        name: `standalone${suffix}`,
        include: ['test/**/*.test.ts'],
        exclude: [...onClusterOnly, ...others],
        env: { RFS_CLIENT: library },
        // Starts one shared redis-server for the run (inject('redisUrl')) and stops it.
        globalSetup: ['./test/helpers/global-setup.ts'],
      },
    },
    {
      extends: true as const,
      test: {
        name: `cluster${suffix}`,
        include: [...onBothTopologies, ...onClusterOnly],
        exclude: others,
        env: { RFS_CLIENT: library },
        // Starts one shared cluster for the run (inject('clusterSeeds')) and stops it.
        globalSetup: ['./test/helpers/cluster-setup.ts'],
      },
    },
  ];
}

export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    // A worker runs its test files one after another in one process, with the modules they import
    // (the package, the client libraries, the helpers) loaded once: a fresh process and module
    // graph for each of the ~200 files cost 15% of the suite's time (28% of the ioredis standalone
    // project's). Every file closes what it opened (clients in afterAll, servers and child
    // processes in their helpers), and a hook every file needs is registered by the setup file,
    // which runs before each file.
    isolate: false,
    setupFiles: ['./test/helpers/setup.ts'],
    // Test files run in parallel (each uses its own keys, see uniqueKey()); the default
    // would be one worker on a 2-core machine.
    fileParallelism: true,
    maxWorkers: 2,
    // `npm test` runs with --coverage: the library's lines the suite runs in-process. The CLI is
    // left out: its tests run the built binary (dist/) in child processes, which V8 coverage of
    // this process does not see.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/cli/**'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      thresholds: { lines: 90, statements: 88, functions: 90, branches: 84 },
    },
    projects: libraries.flatMap(projectsOf),
  },
});
