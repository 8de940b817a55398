// The examples' Redis: REDIS_URL, or redis://127.0.0.1:6379. When no Redis answers, one line on
// stderr and exit code 1, instead of ioredis retrying (and logging every attempt) forever.
import { Redis } from 'ioredis';

export async function connect() {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url, { lazyConnect: true });
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
  return redis;
}
