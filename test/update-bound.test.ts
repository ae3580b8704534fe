/**
 * A worker lost between a route's pre-check and its Update (on the Temporal dev server, whose Update
 * handling is the real server's): the API bounds the wait for a worker to accept the Update
 * (lib/temporal-connection.ts, api/updates.ts) and answers 503 + Retry-After instead of hanging, and a
 * retry with the same Idempotency-Key names the same Update, so the voucher is activated once.
 */
import request from 'supertest';
import { Client, type WorkflowClientInterceptor } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Db } from '../db/connection';
import { dataConverter } from '../lib/codec';
import { connectClient } from '../lib/temporal-connection';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { stateQuery } from '../workflows/voucher/messages';
import { bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { devServerEnv, testCodecKeys, testDb, testPii, testWorker, uniqueTaskQueue } from './helpers/env';
import { makePerson } from './helpers/fixtures';

let env: TestWorkflowEnvironment;
let db: Db;

beforeAll(async () => {
  env = await devServerEnv();
  db = testDb();
}, 120_000);

afterAll(async () => {
  await env?.teardown();
  await db?.destroy();
});

test('R3.1 R3.4: with the worker gone after the pre-check, activation answers 503 + Retry-After within the bound; its retry with the same Idempotency-Key activates once', async () => {
  const queue = uniqueTaskQueue('api-lost');
  const app = testApp(db, env.client, queue);
  const hr = await keyFor(db, 'hr', { district: '330602' });
  const person = await makePerson(db, testPii);
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  // Issued and claimed while a worker runs; then that worker is gone.
  const first = await testWorker(env, db, queue);
  const { voucherNo, seen } = await first.runUntil(async () => {
    const r = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: person.idNumber });
    expect(r.status).toBe(201);
    expect((await claimVoucher(app, r.body.voucherNo, person, holder)).status).toBe(201);
    return { voucherNo: r.body.voucherNo as string, seen: await env.client.workflow.getHandle(voucherWorkflowId(r.body.voucherNo)).query(stateQuery) };
  });
  expect(seen.status).toBe('claimed');
  const handle = env.client.workflow.getHandle(voucherWorkflowId(voucherNo));
  // The API's client as the API process builds it (lib/temporal-connection.ts), with a 1 s bound on a
  // worker accepting an Update. Only its pre-check query is answered with what the worker said a moment
  // ago, as if the worker had died right after answering it; the Update goes to the real server.
  const native = await connectClient(env.address, 'default', testCodecKeys, undefined, 1_000, 1_000);
  const preChecked = new Client({
    connection: native.connection,
    namespace: 'default',
    dataConverter: dataConverter(testCodecKeys),
    interceptors: { workflow: [{ query: async () => seen }, ...(native.options.interceptors.workflow as WorkflowClientInterceptor[])] },
  });
  const lost = testApp(db, preChecked, queue);
  const key = { 'Idempotency-Key': `activate-${voucherNo}` };
  try {
    const t0 = Date.now();
    const refused = await request(lost).post(`/v1/vouchers/${voucherNo}/activate`).set(bearer(holder)).set(key).send({ channel: 'alipay' });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('TEMPORAL_UNAVAILABLE');
    expect(refused.headers['retry-after']).toEqual(expect.any(String));
    expect(Date.now() - t0).toBeLessThan(20_000); // the bound, not the server's minute-long hold
    expect(await db('activation_quota').where({ voucher_no: voucherNo })).toHaveLength(0);
    // A worker is back; the holder retries with the same key and gets the one activation.
    const back = await testWorker(env, db, queue);
    const retried = await back.runUntil(async () => request(app).post(`/v1/vouchers/${voucherNo}/activate`).set(bearer(holder)).set(key).send({ channel: 'alipay' }));
    expect(retried.status).toBe(200);
    expect(retried.body.status).toBe('activated');
    expect(await db('activation_quota').where({ voucher_no: voucherNo })).toHaveLength(1);
    const { events } = await handle.fetchHistory();
    const activations = events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'activate');
    expect(activations).toHaveLength(1);
  } finally {
    await handle.terminate('test cleanup').catch(() => undefined);
    await native.connection.close();
  }
}, 120_000);
