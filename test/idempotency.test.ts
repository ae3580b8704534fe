/** Idempotency-Key on state-changing requests: same key + same body → the first answer, nothing changes twice. */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Express } from 'express';
import type { Db } from '../db/connection';
import { bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { testPii } from './helpers/env';
import { timeSkippingWorld, type World } from './helpers/world';
import { makeInstitution, makePerson, uid } from './helpers/fixtures';

let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let app: Express;

beforeAll(async () => {
  world = await timeSkippingWorld('idem');
  ({ env, db } = world);
  const taskQueue = world.taskQueue;
  app = testApp(db, env.client, taskQueue);
});
afterAll(async () => {
  await world?.stop();
});

const counter = async (district: string) => Number((await db('voucher_counters').where({ district }).first())?.last ?? 0);

test('R2.1: issuing twice with one Idempotency-Key issues one voucher and answers the same; another body with that key → 409', async () => {
  const hr = await keyFor(db, 'hr', { district: '330683' });
  const p = await makePerson(db, testPii, { uiDistrict: '330683' });
  const body = { type: 'general', idNumber: p.idNumber };
  const first = await request(app).post('/v1/vouchers').set(bearer(hr)).set('Idempotency-Key', 'issue-1').send(body);
  expect(first.status).toBe(201);
  const before = await counter('330683');
  const again = await request(app).post('/v1/vouchers').set(bearer(hr)).set('Idempotency-Key', 'issue-1').send(body);
  expect(again.status).toBe(201);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body.voucherNo).toBe(first.body.voucherNo);
  expect(await counter('330683')).toBe(before);
  const other = await request(app).post('/v1/vouchers').set(bearer(hr)).set('Idempotency-Key', 'issue-1').send({ ...body, type: 'directed', occupationCode: '1-01' });
  expect(other.status).toBe(409);
  expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  // Keys belong to a principal: another HR may use the same key string.
  const hr2 = await keyFor(db, 'hr', { district: '330683' });
  const third = await request(app).post('/v1/vouchers').set(bearer(hr2)).set('Idempotency-Key', 'issue-1').send(body);
  expect(third.status).toBe(201);
  expect(third.body.voucherNo).not.toBe(first.body.voucherNo);
});

test('R3.1: a retried activation with the same key gets the first 200, not a 409', async () => {
  const hr = await keyFor(db, 'hr', { district: '330683' });
  const p = await makePerson(db, testPii, { uiDistrict: '330683' });
  const holder = await keyFor(db, 'holder', { personRef: p.personRef });
  const v = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: p.idNumber });
  await claimVoucher(app, v.body.voucherNo, p, holder);
  const a1 = await request(app).post(`/v1/vouchers/${v.body.voucherNo}/activate`).set(bearer(holder)).set('Idempotency-Key', 'act').send({ channel: 'alipay' });
  const a2 = await request(app).post(`/v1/vouchers/${v.body.voucherNo}/activate`).set(bearer(holder)).set('Idempotency-Key', 'act').send({ channel: 'alipay' });
  expect(a1.status).toBe(200);
  expect(a2.status).toBe(200);
  expect(a2.body).toEqual(a1.body);
  const plain = await request(app).post(`/v1/vouchers/${v.body.voucherNo}/activate`).set(bearer(holder)).send({ channel: 'alipay' });
  expect(plain.status).toBe(409);
});

test('R2.5: a trainee list (CSV, read before the key is checked) with a used key and other rows → 409, not the first answer', async () => {
  const inst = await keyFor(db, 'institution', { institutionId: await makeInstitution(db) });
  const [a, b] = [await makePerson(db, testPii), await makePerson(db, testPii)];
  const url = `/v1/trainee-lists?listId=${uid('IDEM')}&district=330683&occupationCode=6-01-02`;
  const csv = (p: { idNumber: string; name: string; phone: string }) => `idNumber,name,phone\r\n${p.idNumber},${p.name},${p.phone}\r\n`;
  const first = await request(app).post(url).set(bearer(inst)).set('Idempotency-Key', 'list-1').set('content-type', 'text/csv').send(csv(a));
  expect(first.status).toBe(202);
  const again = await request(app).post(url).set(bearer(inst)).set('Idempotency-Key', 'list-1').set('content-type', 'text/csv').send(csv(a));
  expect({ status: again.status, replayed: again.headers['idempotent-replayed'] }).toEqual({ status: 202, replayed: 'true' });
  const other = await request(app).post(url).set(bearer(inst)).set('Idempotency-Key', 'list-1').set('content-type', 'text/csv').send(csv(b));
  expect({ status: other.status, code: other.body.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
});
