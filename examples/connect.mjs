// The examples' Redis: REDIS_URL, or redis://127.0.0.1:6379, through the client library named by
// REDIS_CLIENT: ioredis (the default), node-redis or iovalkey. The package takes any of them; the
// examples themselves do not change. When no Redis answers, one line on stderr and exit code 1,
// instead of the client retrying (and logging every attempt) forever.

export async function connect() {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const library = process.env.REDIS_CLIENT ?? 'ioredis';
  let redis;
  if (library === 'node-redis') {
    const { createClient } = await import('redis');
    // No reconnection: an example runs for seconds, and a server that is not there is an error at once.
    redis = createClient({ url, socket: { reconnectStrategy: false } });
  } else if (library === 'ioredis' || library === 'iovalkey') {
    const { Redis } = await import(library);
    redis = new Redis(url, { lazyConnect: true });
  } else {
    console.error(`REDIS_CLIENT must be ioredis, node-redis or iovalkey, not ${JSON.stringify(library)}`);
    process.exit(1);
  }
  let cause; // the socket's error (ECONNREFUSED, …): connect() itself only says the connection closed
  const onError = (err) => (cause ??= err);
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (err) {
    const shown = url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@'); // never print a password
    console.error(`cannot reach Redis at ${shown}: ${(cause ?? err).message}; set REDIS_URL to a running server`);
    process.exit(1);
  }
  redis.off('error', onError);
  // Errors after the connection reach the commands that fail; the listener keeps an 'error' event
  // from ending the process while the client reconnects.
  redis.on('error', () => {});
  return redis;
}
