/** Health, readiness, metrics, security headers, per-principal rate limits and the audit log. */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createApp } from '../api/app';
import { listenApi, startApi } from '../api/main';
import { auditLog, drainAuditLogs } from '../api/ops';
import express from 'express';
import { loadConfig } from '../lib/config';
import { createDb, type Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { bearer, keyFor } from './helpers/api';
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

const app = (o: { db?: Db; rate?: number } = {}) =>
  createApp({ db: o.db ?? db, client: env.client, pii: testPii, logger: createLogger('silent'), rateLimitPerMinute: o.rate });

test('/healthz answers while /readyz checks PostgreSQL and Temporal', async () => {
  const a = app();
  expect((await request(a).get('/healthz')).body).toEqual({ status: 'ok' });
  const ready = await request(a).get('/readyz');
  expect(ready.status).toBe(200);
  expect(ready.body.checks).toEqual({ postgres: 'ok', temporal: 'ok' });
});

test('/readyz answers 503 with Retry-After when PostgreSQL refuses connections, instead of hanging', async () => {
  const dead = createDb('postgres://postgres@127.0.0.1:1/none');
  try {
    const r = await request(app({ db: dead })).get('/readyz');
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
    expect(r.body.checks.temporal).toBe('ok');
    expect(r.body.checks.postgres).not.toBe('ok');
  } finally {
    await dead.destroy();
  }
});

test('security headers are set and x-powered-by is not', async () => {
  const r = await request(app()).get('/healthz');
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(r.headers['content-security-policy']).toBeDefined();
  expect(r.headers['x-powered-by']).toBeUndefined();
  expect(r.headers['x-request-id']).toMatch(/[0-9a-f-]{36}/);
});

test('metrics count requests per route pattern, never per voucher number', async () => {
  const a = app();
  const op = await keyFor(db, 'operator');
  await request(a).get('/v1/vouchers/SX3306022026123456').set(bearer(op));
  const m = await request(a).get('/metrics');
  expect(m.text).toMatch(/api_requests_total\{route="\/v1\/vouchers\/:no",method="GET",status="404"\} 1/);
  expect(m.text).toContain('api_request_duration_seconds_bucket');
  expect(m.text).not.toContain('SX3306022026123456');
});

test('rate limits are per principal: one principal at its limit gets 429, another is unaffected', async () => {
  const a = app({ rate: 3 });
  const k1 = await keyFor(db, 'operator');
  const k2 = await keyFor(db, 'operator');
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) codes.push((await request(a).get('/v1/vouchers/SX3306022026000000').set(bearer(k1))).status);
  expect(codes).toEqual([404, 404, 404, 429]);
  expect((await request(a).get('/v1/vouchers/SX3306022026000000').set(bearer(k2))).status).toBe(404);
});

test('every state-changing request is audited: who, what, when, request ID, outcome', async () => {
  const a = app();
  const hr = await keyFor(db, 'hr', { district: '330602' });
  const r = await request(a).post('/v1/vouchers').set(bearer(hr)).set('x-request-id', 'audit-test-1').send({ type: 'general', idNumber: 'bad' });
  expect(r.status).toBe(400);
  const anon = await request(a).post('/v1/vouchers').set('x-request-id', 'audit-test-2').send({});
  expect(anon.status).toBe(401);
  await new Promise((res) => setTimeout(res, 200));
  const rows = await db('audit_log').whereIn('request_id', ['audit-test-1', 'audit-test-2']).orderBy('request_id');
  expect(rows).toHaveLength(2);
  expect(rows[0]).toMatchObject({ role: 'hr', method: 'POST', path: '/v1/vouchers', status: 400, outcome: 'refused', problem_code: 'INVALID_REQUEST' });
  expect(rows[0].principal_id).toMatch(/^hr-/);
  expect(rows[1]).toMatchObject({ principal_id: null, status: 401, problem_code: 'UNAUTHENTICATED' });
});

test('audit rows still buffered when the API stops are written by drainAuditLogs, not lost', async () => {
  // A flush interval far longer than the test: only the drain can write the row in time.
  const a = express().use(auditLog(db, createLogger('silent'), { flushMs: 60_000 }));
  a.post('/v1/x', (_req, res) => {
    res.setHeader('x-request-id', 'audit-drain-1');
    res.status(204).end();
  });
  expect((await request(a).post('/v1/x')).status).toBe(204);
  expect(await db('audit_log').where({ request_id: 'audit-drain-1' })).toHaveLength(0);
  await drainAuditLogs();
  expect(await db('audit_log').where({ request_id: 'audit-drain-1' })).toMatchObject([{ method: 'POST', path: '/v1/x', status: 204, outcome: 'ok' }]);
  await drainAuditLogs(); // nothing left: written once
  expect(await db('audit_log').where({ request_id: 'audit-drain-1' })).toHaveLength(1);
});

test('the API process stopping in order (startApi().stop(), what SIGTERM runs) writes its answered requests\' audit rows before it closes its pool', async () => {
  const cfg = loadConfig();
  const level = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'silent'; // startApi's own logger
  const api = await startApi({
    databaseUrl: process.env.TEST_DATABASE_URL!,
    temporalAddress: env.address,
    namespace: 'default',
    port: 0,
    personRefKey: cfg.personRefKey,
    piiKey: cfg.piiKey,
    codecKeys: testCodecKeys,
    temporalUiOrigin: 'http://127.0.0.1:8233',
    keepAliveTimeoutMs: 5_000,
    // Far longer than the test: the row can only be written by stop(), not by the batch timer.
    auditFlushMs: 60_000,
  }).finally(() => (level === undefined ? delete process.env.LOG_LEVEL : (process.env.LOG_LEVEL = level)));
  const { port } = api.server.address() as AddressInfo;
  const refused = await fetch(`http://127.0.0.1:${port}/v1/vouchers/SX-0/check-ins`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'audit-stop-1' },
    body: '{}',
  });
  expect(refused.status).toBe(401);
  expect(await db('audit_log').where({ request_id: 'audit-stop-1' })).toHaveLength(0);
  await api.stop();
  expect(await db('audit_log').where({ request_id: 'audit-stop-1' })).toMatchObject([
    { method: 'POST', path: '/v1/vouchers/SX-0/check-ins', status: 401, outcome: 'refused', problem_code: 'UNAUTHENTICATED' },
  ]);
  expect(api.server.listening).toBe(false);
});

test('NUL characters in bodies, queries or paths are refused with 400 before they reach PostgreSQL', async () => {
  const a = app();
  const hr = await keyFor(db, 'hr', { district: '330602' });
  const body = await request(a).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: 'x\u0000' });
  expect(body.status).toBe(400);
  expect(body.body.detail).toContain('NUL');
  const query = await request(a).get('/v1/vouchers?institutionId=%00').set(bearer(hr));
  expect(query.status).toBe(400);
  const inst = await keyFor(db, 'institution', { institutionId: 'X' });
  const list = await request(a).post('/v1/trainee-lists').set(bearer(inst)).send({ listId: 'L1', district: '330602', occupationCode: '1-01', rows: [{ idNumber: '1', name: '\u0000', phone: '1' }] });
  expect(list.status).toBe(400);
});

describe('keep-alive connections behind a proxy', () => {
  // One raw connection: a request, `idleMs` of silence, then whether the API has closed the connection
  // meanwhile and, if not, whether it still answers a second request on it.
  const idleConnection = async (keepAliveTimeoutMs: number, idleMs: number) => {
    const server = await listenApi(app(), 0, keepAliveTimeoutMs, '127.0.0.1');
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    let received = '';
    let closedByServer = false;
    socket.on('data', (d) => (received += d.toString()));
    socket.on('end', () => (closedByServer = true));
    const ask = async () => {
      const before = received.length;
      socket.write('GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: keep-alive\r\n\r\n');
      for (let i = 0; i < 100 && !received.slice(before).includes('{"status":"ok"}'); i++) await new Promise((r) => setTimeout(r, 20));
      return received.slice(before).startsWith('HTTP/1.1 200');
    };
    try {
      expect(await ask()).toBe(true);
      await new Promise((r) => setTimeout(r, idleMs));
      return { closedByServer, secondAnswered: closedByServer ? false : await ask(), keepAliveTimeout: server.keepAliveTimeout, headersTimeout: server.headersTimeout };
    } finally {
      socket.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  };

  test('an idle connection stays open for the configured keep-alive timeout, then the API closes it', async () => {
    // Node closes an idle connection up to ≈ 1 s after the timeout it is given (it allows for the
    // client's rounding of the Keep-Alive header), so the idle time lies clear of both.
    const kept = await idleConnection(4_000, 1_800);
    expect(kept).toMatchObject({ closedByServer: false, secondAnswered: true });
    expect(kept.headersTimeout).toBeGreaterThan(kept.keepAliveTimeout);
    const closed = await idleConnection(300, 1_800);
    expect(closed.closedByServer).toBe(true);
  });

  test("by default the API keeps idle connections longer than a proxy's 60 s upstream timeout; bad values are refused", async () => {
    const c = loadConfig({});
    expect(c.apiKeepAliveTimeoutMs).toBeGreaterThan(60_000);
    expect(loadConfig({ API_KEEP_ALIVE_TIMEOUT_MS: '120000' }).apiKeepAliveTimeoutMs).toBe(120_000);
    await expect(listenApi(app(), 0, Number('abc'), '127.0.0.1')).rejects.toThrow(/keep-alive timeout/);
    await expect(listenApi(app(), 0, 300_000, '127.0.0.1')).rejects.toThrow(/keep-alive timeout/);
  });
});
