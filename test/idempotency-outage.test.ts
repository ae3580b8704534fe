/**
 * `Idempotency-Key` when PostgreSQL goes away in the middle of a request (api/idempotency.ts): the key
 * was stored, then recording the answer fails. The client must still get the route's answer as
 * problem+json or JSON — not Express's default HTML error page (with a stack trace outside production),
 * which is what handing that late error to next() produced.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { idempotency, IN_PROGRESS_TTL_MS } from '../api/idempotency';
import { Problem, sendProblem } from '../api/problem';
import { API_DB_OPTIONS, createDb, type Db } from '../db/connection';
import { quietDrill, TcpProxy } from './helpers/drill';

let proxy: TcpProxy;
let db: Db;
let handled = 0;
let app: express.Express;

beforeAll(async () => {
  quietDrill();
  const proxied = await TcpProxy.forUrl(process.env.TEST_DATABASE_URL!);
  proxy = proxied.proxy;
  db = createDb(proxied.url, { ...API_DB_OPTIONS, max: 2 });
  app = express();
  app.use(express.json());
  app.use((req: Request, _res: Response, next: NextFunction) => {
    req.principal = { id: `idem-outage-${process.pid}-${Date.now()}`, role: 'hr' } as never;
    next();
  });
  app.use(idempotency(db));
  // The database goes away after the key was stored, before the answer is recorded.
  app.post('/ok', async (_req, res) => {
    await proxy.down();
    res.status(201).json({ done: true });
  });
  app.post('/fails', async (_req, _res, next) => {
    await proxy.down();
    next(new Error('route failed'));
  });
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    handled += 1;
    sendProblem(res, new Problem(500, 'INTERNAL', 'internal error'));
  });
});

afterEach(async () => {
  if (!proxy.isUp) await proxy.up();
});

afterAll(async () => {
  await db?.destroy();
  await proxy?.down();
});

test('a success whose recording fails still reaches the client as the route answered', async () => {
  handled = 0;
  const res = await request(app).post('/ok').set('Idempotency-Key', 'k-ok').send({ a: 1 }).timeout(15_000);
  expect({ status: res.status, body: res.body, handled }).toEqual({ status: 201, body: { done: true }, handled: 0 });
});

test('a failure whose recording fails too is answered once, as problem+json (not the default HTML error page)', async () => {
  handled = 0;
  const res = await request(app).post('/fails').set('Idempotency-Key', 'k-fail').send({ a: 1 }).timeout(15_000);
  expect({ status: res.status, type: res.headers['content-type'], code: res.body.code, handled }).toEqual({
    status: 500,
    type: expect.stringContaining('application/problem+json'),
    code: 'INTERNAL',
    handled: 1,
  });
});

test('a key whose first request never recorded an answer is in progress for a while, then one retry takes it over and runs', async () => {
  const principal = `idem-stale-${process.pid}-${Date.now()}`;
  const stale = express();
  stale.use(express.json());
  stale.use((req: Request, _res: Response, next: NextFunction) => {
    req.principal = { id: principal, role: 'hr' } as never;
    next();
  });
  stale.use(idempotency(db));
  let runs = 0;
  stale.post('/work', (_req, res) => {
    runs += 1;
    res.status(201).json({ runs });
  });
  stale.use((err: Problem, _req: Request, res: Response, _next: NextFunction) => sendProblem(res, err));
  const body = { a: 1 };
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256').update(`POST /work\n${JSON.stringify(body)}\n`).digest('hex');
  // The first request stored the key and died before answering.
  await db('idempotency_keys').insert({ principal_id: principal, key: 'k-stale', request_hash: hash });
  const fresh = await request(stale).post('/work').set('Idempotency-Key', 'k-stale').send(body);
  expect({ status: fresh.status, code: fresh.body.code, runs }).toEqual({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS', runs: 0 });
  // Older than any request runs: abandoned, so the retry runs once and its answer is kept.
  await db('idempotency_keys').where({ principal_id: principal, key: 'k-stale' }).update({ created_at: new Date(Date.now() - IN_PROGRESS_TTL_MS - 1000) });
  const retried = await request(stale).post('/work').set('Idempotency-Key', 'k-stale').send(body);
  expect({ status: retried.status, body: retried.body }).toEqual({ status: 201, body: { runs: 1 } });
  const replayed = await request(stale).post('/work').set('Idempotency-Key', 'k-stale').send(body);
  expect({ status: replayed.status, body: replayed.body, replayed: replayed.headers['idempotent-replayed'], runs }).toEqual({ status: 201, body: { runs: 1 }, replayed: 'true', runs: 1 });
});
