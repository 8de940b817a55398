/**
 * A TCP proxy on loopback that forwards to a Redis server and can cut or stall the connections
 * passing through it: real network faults, for the fault tests.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Proxy {
  readonly port: number;
  readonly url: string;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  /**
   * Request bursts since {@link Proxy.markBursts}: client-to-server bytes that arrive first, or
   * after server-to-client bytes, on any connection. A client that waits for each reply makes one
   * burst per round trip; commands pipelined behind each other make one. Counted on every
   * connection together, in the order the proxy sees the bytes.
   */
  readonly bursts: number;
  /** Start counting request bursts afresh. */
  markBursts(): void;
  /** Destroy every open connection (both sides), as a network cut would. Returns how many. */
  cut(): number;
  /**
   * Until `up()`, act as a proxy whose server is down: cut every open connection, and accept new
   * ones only to close them at once (counted in {@link Proxy.turnedAway}).
   */
  down(): void;
  up(): void;
  /** Connections accepted and closed at once while down. */
  readonly turnedAway: number;
  /**
   * Hold back, from the next request whose bytes match `pattern` on, every request a client sends
   * on that connection until `release()` (the other connections go on). Needs `holding: true`.
   */
  holdRequest(pattern: RegExp): Promise<void>;
  release(): void;
  /** Stop forwarding in both directions until `resume()`: bytes pile up, nothing is lost. */
  stall(): void;
  resume(): void;
  close(): Promise<void>;
}

/**
 * `delayMs`: each chunk, either way, is passed on that many ms after it arrived (in order), as a
 * network with that one-way latency would (no bandwidth limit). `holding`: requests are passed on
 * by hand (without backpressure), so that {@link Proxy.holdRequest} can hold some back.
 */
export async function startProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
  { delayMs = 0, holding = false }: { delayMs?: number; holding?: boolean } = {},
): Promise<Proxy> {
  // Set by holdRequest: the pattern to hold from, then the connection held and what it sent since.
  let hold: { pattern: RegExp; matched: () => void; held?: { upstream: Socket; chunks: Buffer[] } } | undefined;
  const pairs = new Set<[Socket, Socket]>();
  let stalled = false;
  let isDown = false;
  let turnedAway = 0;
  let bursts = 0;
  let replied = true;
  const server: Server = createServer((client) => {
    if (isDown) {
      turnedAway++;
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('data', () => {
      if (replied) bursts++;
      replied = false;
    });
    upstream.on('data', () => {
      replied = true;
    });
    if (delayMs > 0) {
      // Timers of the same duration fire in the order they were set: the bytes keep their order.
      const later = (from: Socket, to: Socket): void => {
        from.on('data', (chunk: Buffer) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
        from.on('end', () => setTimeout(() => to.destroyed || to.end(), delayMs));
      };
      later(client, upstream);
      later(upstream, client);
    } else if (holding) {
      client.on('data', (chunk: Buffer) => {
        if (hold !== undefined && hold.held === undefined && hold.pattern.test(chunk.toString('latin1'))) {
          hold.held = { upstream, chunks: [] };
          hold.matched();
        }
        if (hold?.held?.upstream === upstream) hold.held.chunks.push(chunk);
        else upstream.write(chunk);
      });
      client.on('end', () => upstream.end());
      upstream.pipe(client);
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
    if (stalled) {
      client.pause();
      upstream.pause();
    }
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const cut = (): number => {
    const n = pairs.size;
    for (const [a, b] of [...pairs]) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
    return n;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get connections() {
      return pairs.size;
    },
    get bursts() {
      return bursts;
    },
    markBursts() {
      bursts = 0;
      replied = true;
    },
    cut,
    holdRequest(pattern) {
      if (!holding) throw new Error('startProxy(…, { holding: true }) holds requests');
      return new Promise<void>((matched) => {
        hold = { pattern, matched };
      });
    },
    release() {
      const held = hold?.held;
      hold = undefined;
      if (held !== undefined && !held.upstream.destroyed) for (const chunk of held.chunks) held.upstream.write(chunk);
    },
    down() {
      isDown = true;
      cut();
    },
    up() {
      isDown = false;
    },
    get turnedAway() {
      return turnedAway;
    },
    stall() {
      stalled = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    resume() {
      stalled = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
