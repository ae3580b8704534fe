/**
 * A small closed-loop load generator for the benchmark: `clients` loops, each with at most one
 * operation in flight — what autocannon does with `-c clients` — for load that is not HTTP (bare
 * Temporal client calls, figure 3's baseline; workflow starts, figure 6's) and for HTTP from the
 * bench's own process over one keep-alive agent with `clients` sockets.
 */
import http from 'node:http';

export interface HttpResult {
  status: number;
  body: string;
}

export function keepAliveAgent(clients: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });
}

export function httpRequest(
  agent: http.Agent,
  port: number,
  o: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: o.method,
        path: o.path,
        headers: { ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}), ...o.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/**
 * Runs `total` operations over `clients` closed loops; `op(i)` is the i-th operation. Returns the
 * latency of every operation (ms, in completion order), split into each client's first operation
 * (`first`: the burst in which every client starts at once, and for HTTP its connection) and the rest
 * (`steady`), the wall-clock time and the failures.
 */
export async function closedLoop(
  total: number,
  clients: number,
  op: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; first: number[]; steady: number[]; ms: number; errors: string[] }> {
  const latencies: number[] = [];
  const first: number[] = [];
  const steady: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(clients, total) }, async () => {
      for (let k = 0; ; k++) {
        const i = next++;
        if (i >= total) return;
        const s = performance.now();
        try {
          await op(i);
          const ms = performance.now() - s;
          latencies.push(ms);
          (k === 0 ? first : steady).push(ms);
        } catch (e) {
          errors.push(String((e as Error).message ?? e).slice(0, 200));
        }
      }
    }),
  );
  return { latencies, first, steady, ms: performance.now() - t0, errors };
}
