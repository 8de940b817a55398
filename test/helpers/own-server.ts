/**
 * A redis-server of a test file's own, for tests whose server must be theirs alone (they stop it,
 * fill its memory, change its ACL, count its connections or commands): started before the file's
 * tests and stopped after them, with an ioredis client on it.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { closeAll, connect } from './clients.js';
import { type RedisServer, type StartRedisOptions, startRedis } from './redis-server.js';

/** The file's server and an ioredis client on it; both exist only inside its tests. */
export interface OwnServer {
  readonly server: RedisServer;
  readonly admin: Redis;
}

/**
 * Start a server of the file's own before its tests and an ioredis client on it; after them,
 * close every client the tests made ({@link closeAll}) and stop the server. Call at the top of a
 * test file. `options` start the server (its `args`, say).
 */
export function useOwnServer(options?: StartRedisOptions): OwnServer {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis(options);
    admin = connect(server.url);
  });
  afterAll(async () => {
    await closeAll();
    await server?.stop();
  });
  const outside = (): never => {
    throw new Error("the file's own server exists only inside its tests");
  };
  return {
    get server() {
      return server ?? outside();
    },
    get admin() {
      return admin ?? outside();
    },
  };
}
