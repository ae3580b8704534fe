/**
 * The contract validator's route lookup with and without the path-pattern memo (api/route-pattern-cache.ts),
 * measured alone: an Express app with only the validator, requests from a keep-alive client in the same
 * process, CPU of the process per request. Each variant runs in a child process of its own (the memo is
 * process-wide), alternating, three rounds:
 *   npx tsx bench/route-lookup.ts        → bench/results/route-lookup/results.json
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import express from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { openapiDocument } from '../api/openapi';
import { memoisePathPatterns } from '../api/route-pattern-cache';

async function measure(): Promise<void> {
  if (process.env.MEMO === '1') memoisePathPatterns();
  const app = express();
  app.use(express.json());
  app.use(OpenApiValidator.middleware({ apiSpec: openapiDocument() as never, validateRequests: { allowUnknownQueryParameters: false }, validateResponses: false, validateSecurity: false, ignoreUndocumented: false }));
  app.use((_req, res) => res.status(204).end());
  app.use((err: { status?: number }, _req: express.Request, res: express.Response, _n: express.NextFunction) => res.status(err.status ?? 500).end());
  const server = app.listen(0);
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send = (method: string, path: string, body?: string) =>
    new Promise<number>((resolve, reject) => {
      const r = http.request({ port, method, path, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); });
      r.on('error', reject);
      r.end(body);
    });
  const cases: [string, string, string, string?][] = [
    ['check-in (7th path)', 'POST', '/v1/vouchers/SX3306022026000001/check-ins', JSON.stringify({ sessionId: 's1', verifiedMinutes: 90 })],
    ['spot check (55th path)', 'GET', '/v1/spot-checks/abc'],
  ];
  for (const [name, m, p, b] of cases) {
    for (let i = 0; i < 500; i++) await send(m, p, b);
    const n = 5000;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let status = 0;
    for (let i = 0; i < n; i++) status = await send(m, p, b);
    const c = process.cpuUsage(c0);
    console.log(JSON.stringify({ memo: process.env.MEMO === '1', route: name, status, cpuUsPerRequest: +((c.user + c.system) / n).toFixed(1), wallUsPerRequest: +(((performance.now() - t0) * 1000) / n).toFixed(1) }));
  }
  server.close();
  agent.destroy();
}
function main(): void {
  const rows: unknown[] = [];
  for (let round = 0; round < 3; round++) {
    for (const memo of ['0', '1']) {
      const out = execFileSync(process.execPath, [...process.execArgv, __filename], { env: { ...process.env, ROUTE_LOOKUP_CHILD: '1', MEMO: memo }, encoding: 'utf8' });
      for (const line of out.trim().split('\n')) {
        console.log(line);
        rows.push({ round, ...JSON.parse(line) });
      }
    }
  }
  const dir = path.join(__dirname, 'results', 'route-lookup');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, rows }, null, 2) + '\n');
}

if (process.env.ROUTE_LOOKUP_CHILD) void measure();
else main();
