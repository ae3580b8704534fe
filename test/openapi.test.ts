/** The OpenAPI document is served, browsable, and enforced on requests and (under test) responses. */
import express from 'express';
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createApp } from '../api/app';
import { contractValidator, openapiDocument } from '../api/openapi';
import { pathPatternMemo } from '../api/route-pattern-cache';
import type { Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { bearer, keyFor, testApp } from './helpers/api';
import { testCodecKeys, testDb, testPii, timeSkippingEnv } from './helpers/env';

let env: TestWorkflowEnvironment;
let db: Db;
beforeAll(async () => {
  env = await timeSkippingEnv();
  db = testDb();
});
afterAll(async () => {
  await env?.teardown();
  await db?.destroy();
});

test('/openapi.json serves the OpenAPI 3.1 document and /docs renders it from local assets', async () => {
  const app = testApp(db, env.client, 'unused');
  const doc = await request(app).get('/openapi.json');
  expect(doc.status).toBe(200);
  expect(doc.body.openapi).toBe('3.1.0');
  expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/vouchers', '/v1/vouchers/{voucherNo}/activate']));
  const page = await request(app).get('/docs');
  expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
  expect((await request(app).get('/docs/assets/swagger-ui-bundle.js')).status).toBe(200);
});

test('a request outside the contract is refused by the validator with a problem+json 400 naming the field', async () => {
  const app = testApp(db, env.client, 'unused');
  const op = await keyFor(db, 'operator');
  const r = await request(app).get('/v1/vouchers?limit=500&unknownParam=1').set(bearer(op));
  expect(r.status).toBe(400);
  expect(r.headers['content-type']).toContain('application/problem+json');
  expect(r.body.code).toBe('INVALID_REQUEST');
  expect(JSON.stringify(r.body.errors)).toMatch(/limit|unknownParam/);
  const inst = await keyFor(db, 'institution', { institutionId: 'X' });
  const long = await request(app).post('/v1/vouchers/SX3306022026000001/check-ins').set(bearer(inst)).send({ sessionId: 'x'.repeat(65) });
  expect(long.status).toBe(400);
  expect(JSON.stringify(long.body.errors)).toContain('/body/sessionId');
});

test('a response that breaks the contract becomes an error (so the test that caused it fails)', async () => {
  const app = express();
  app.use(express.json());
  app.use(contractValidator(true));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'not-ok' });
  });
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ message: err.message });
  });
  const r = await request(app).get('/healthz');
  expect(r.status).toBe(500);
  expect(r.body.message).toContain('response breaks the contract');
});

test('every path in the document has an operation, and every operation answers problem+json on errors', () => {
  const doc = openapiDocument() as { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
  for (const [p, item] of Object.entries(doc.paths)) {
    const ops = Object.entries(item).filter(([k]) => ['get', 'post', 'put', 'patch', 'delete'].includes(k));
    expect({ path: p, operations: ops.length > 0 }).toEqual({ path: p, operations: true });
    for (const [, op] of ops) {
      if (p.startsWith('/v1/')) expect({ path: p, default: !!op.responses?.default }).toEqual({ path: p, default: true });
    }
  }
});

/** Routes outside the API contract, each for a reason: operator plumbing and the contract's own viewer. */
const OUTSIDE_CONTRACT = new Set([
  'GET /metrics', // Prometheus exposition format, scraped by operators (docs/OPERATIONS.md)
  'GET /openapi.json', // the contract itself
  'GET /docs', // Swagger UI over the contract (its assets are static files, not routes)
  'GET /docs/init.js',
  'POST /codec/encode', // Temporal's codec-server protocol for the Web UI (operator key; api/codec-server.ts)
  'POST /codec/decode',
]);

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  rawPath?: string | string[];
}

/** Every `METHOD /path` registered on an Express 5 app, path parameters written `{}`. */
function registeredRoutes(stack: Layer[], prefix = ''): string[] {
  const out: string[] = [];
  const norm = (p: string) => p.replace(/:[A-Za-z0-9_]+/g, '{}');
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const p of paths) for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.push(`${m.toUpperCase()} ${norm(prefix + p)}`);
    } else if (layer.handle?.stack) {
      const raw = layer.rawPath;
      if (typeof raw !== 'string') throw new Error(`cannot read the mount path of a router layer: ${String(raw)}`);
      out.push(...registeredRoutes(layer.handle.stack, raw === '/' ? prefix : prefix + raw));
    }
  }
  return out;
}

test('every route registered on the app is documented, and every documented operation is served', async () => {
  const app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue: 'unused', codecKeys: testCodecKeys });
  const routes = new Set(registeredRoutes((app as unknown as { router: { stack: Layer[] } }).router.stack));
  expect(routes.size).toBeGreaterThan(40); // the walk really reached the routers
  const doc = openapiDocument() as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set(
    Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.keys(item)
        .filter((k) => ['get', 'post', 'put', 'patch', 'delete'].includes(k))
        .map((m) => `${m.toUpperCase()} ${p.replace(/\{[^}]+\}/g, '{}')}`),
    ),
  );
  const undocumented = [...routes].filter((r) => !documented.has(r) && !OUTSIDE_CONTRACT.has(r)).sort();
  const unserved = [...documented].filter((r) => !routes.has(r)).sort();
  expect({ undocumented, unserved }).toEqual({ undocumented: [], unserved: [] });
  // And the validator refuses what the contract does not know (ignoreUndocumented is off).
  const op = await keyFor(db, 'operator');
  const r = await request(app).get('/v1/no-such-route').set(bearer(op));
  expect({ status: r.status, code: r.body.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
  const pub = await request(app).get('/v1/public/no-such-route');
  expect({ status: pub.status, code: pub.body.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
});

test('the validator compiles each documented path pattern once, not on every request, and still matches routes and their parameters', async () => {
  const app = testApp(db, env.client, 'unused');
  const memo = pathPatternMemo()!; // installed by the app's contract validator
  expect(memo).toBeDefined();
  const op = await keyFor(db, 'operator');
  // The validator tries the contract's patterns in order until one matches: an early path and a late one.
  const paths = Object.keys(openapiDocument().paths as object);
  expect(paths.indexOf('/v1/vouchers/{voucherNo}/clawback/recovered')).toBeGreaterThan(40);
  const early = () => request(app).get('/v1/vouchers/SX3306022026000001').set(bearer(op));
  const late = () => request(app).post('/v1/vouchers/not-a-voucher-no/clawback/recovered').set(bearer(op)).send({});
  expect((await early()).status).toBe(404); // matched and validated: the route ran and found no such voucher
  expect((await late()).status).toBe(400);
  const compiled = memo.compiled();
  const served = memo.served();
  for (let i = 0; i < 5; i++) {
    expect((await early()).status).toBe(404);
    expect((await late()).status).toBe(400);
  }
  expect(memo.compiled()).toBe(compiled);
  expect(memo.served()).toBeGreaterThan(served + 5 * 40);
  // The late path's parameter still reaches the validator's checks through the remembered regexp.
  const bad = await late();
  expect(bad.body.code).toBe('INVALID_REQUEST');
  expect(JSON.stringify(bad.body.errors)).toContain('voucherNo');
});
