// The aggregate every receiver computes from the CSV rows it parses, and the log generator computes
// directly while it writes them: rows, and per day (from each row's time) and country, requests and
// bytes served. The demo checks every receiver's aggregate against the generator's.

/**
 * A new, empty aggregate: what every receiver computes, and the generator too. Rows, and per day
 * (taken from each row's time) and country: requests and bytes served.
 */
export function newAggregate() {
  return { rows: 0, days: new Map() };
}

export function addRow(agg, day, country, bytes) {
  agg.rows++;
  let countries = agg.days.get(day);
  if (countries === undefined) {
    countries = new Map();
    agg.days.set(day, countries);
  }
  let c = countries.get(country);
  if (c === undefined) {
    c = { requests: 0, bytes: 0 };
    countries.set(country, c);
  }
  c.requests++;
  c.bytes += bytes;
}

/** `into` += `agg`. */
export function mergeAggregate(into, agg) {
  into.rows += agg.rows;
  for (const [day, countries] of agg.days) {
    for (const [country, c] of countries) {
      let t = into.days.get(day);
      if (t === undefined) into.days.set(day, (t = new Map()));
      const s = t.get(country) ?? { requests: 0, bytes: 0 };
      s.requests += c.requests;
      s.bytes += c.bytes;
      t.set(country, s);
    }
  }
  return into;
}

/** Why `got` differs from `expected`, or undefined when they are equal. */
export function compareAggregates(expected, got) {
  if (got.rows !== expected.rows) return `${got.rows} rows, expected ${expected.rows}`;
  const days = new Set([...expected.days.keys(), ...got.days.keys()]);
  for (const day of days) {
    const e = expected.days.get(day) ?? new Map();
    const g = got.days.get(day) ?? new Map();
    for (const country of new Set([...e.keys(), ...g.keys()])) {
      const ec = e.get(country) ?? { requests: 0, bytes: 0 };
      const gc = g.get(country) ?? { requests: 0, bytes: 0 };
      if (gc.requests !== ec.requests) return `${day} ${country}: ${gc.requests} requests, expected ${ec.requests}`;
      if (gc.bytes !== ec.bytes) return `${day} ${country}: ${gc.bytes} bytes, expected ${ec.bytes}`;
    }
  }
  return undefined;
}
