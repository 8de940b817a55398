// Parse a CSV stored in Redis as it streams out, without loading it whole: orders per region.
//
//   node examples/csv-parse.mjs        (needs the csv-parse package)
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { createRedisReadStream, createRedisWriteStream } from 'redis-file-stream';
import { connect } from './connect.mjs';

const redis = await connect(); // REDIS_URL, or redis://127.0.0.1:6379
const key = `${process.env.EXAMPLE_KEY_PREFIX ?? 'example:'}orders.csv`;

// A small generated CSV (quoted fields included), streamed into Redis line by line.
const REGIONS = ['north', 'south', 'east', 'west'];
const PRODUCTS = ['"Bolt, M6"', '"Nut ""hex"""', 'Washer', '"Screw,\nwood"'];
function* orders(count) {
  yield 'id,region,product,quantity\n';
  for (let i = 1, x = 7; i <= count; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31; // a fixed pseudo-random sequence
    yield `${i},${REGIONS[(x >>> 16) % 4]},${PRODUCTS[(x >>> 24) % 4]},${1 + ((x >>> 8) % 50)}\n`;
  }
}
await pipeline(
  Readable.from(orders(2000)),
  createRedisWriteStream(redis, key, { overwrite: true, contentType: 'text/csv' }),
);

// Read it back through csv-parse, one record at a time.
const byRegion = {};
let rows = 0;
await pipeline(createRedisReadStream(redis, key), parse({ columns: true }), async (records) => {
  for await (const { region, quantity } of records) {
    rows++;
    byRegion[region] ??= { orders: 0, quantity: 0 };
    byRegion[region].orders++;
    byRegion[region].quantity += Number(quantity);
  }
});

console.log(JSON.stringify({ rows, byRegion }));
console.log('ok');
await redis.quit();
