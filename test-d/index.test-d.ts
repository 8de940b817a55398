// Placeholder: replace with type tests of the public API, e.g.
//   import { createRedisReadStream } from 'redis-file-stream';
// tsd checks the built declarations (run `npm run build` first).
import { expectType } from 'tsd';

const one: number = 1;
expectType<number>(one);
