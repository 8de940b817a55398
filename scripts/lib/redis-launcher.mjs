// Private Redis servers for the tests, the benchmarks and the demo: standalone (plain, with a
// password, with TLS) and Redis Cluster, on 127.0.0.1 and free ports, stopped for sure.
// The one import point; the API with its docs is redis-launcher.d.mts.
//
//   redis-launcher/server.mjs   startRedis, free ports, the process registry and the reaper
//   redis-launcher/cluster.mjs  startCluster and its helpers (masterOf, rejoinAsReplica, ...)
//   redis-launcher/resp.mjs     a few commands over a plain socket, for checks and admin commands

export { startCluster } from './redis-launcher/cluster.mjs';
export { getFreePort, isPortFree, RUN_DIR_ENV, reapServers, startRedis } from './redis-launcher/server.mjs';
