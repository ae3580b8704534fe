/**
 * Personal data never reaches Temporal in plain text: real histories are exported and searched for a
 * known ID number, name, phone and account; every payload is AES-256-GCM ciphertext with a key ID;
 * failure messages are encoded too; and the codec endpoint decodes only for an authenticated operator,
 * with CORS limited to the Web UI's origin.
 */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Express } from 'express';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { createApp } from '../api/app';
import type { Db } from '../db/connection';
import { AesGcmCodec, ENCODING, parseCodecKeys } from '../lib/codec';
import { createLogger } from '../lib/logger';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { bearer, claimVoucher, keyFor } from './helpers/api';
import { testCodecKeys, testPii } from './helpers/env';
import { timeSkippingWorld, type World } from './helpers/world';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation, type PersonFixture } from './helpers/fixtures';

const UI_ORIGIN = 'http://127.0.0.1:8233';
let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let app: Express;
let person: PersonFixture;
let voucherNo: string;
let historyJson: string;
let firstHistory: unknown;

beforeAll(async () => {
  world = await timeSkippingWorld('pii');
  ({ env, db } = world);
  const taskQueue = world.taskQueue;
  app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, codecKeys: testCodecKeys, temporalUiOrigin: UI_ORIGIN });

  // A full directed lifecycle, plus a refused activation (quota) whose failure lands in history.
  person = await makePerson(db, testPii);
  const occ = uniqueOccupation();
  const instId = await makeInstitution(db);
  const cls = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions: 5 });
  await makeCatalogueEntry(db, { occupationCode: occ, level: cls.level, amountFen: 99_900 });
  const hr = await keyFor(db, 'hr', { district: '330624' });
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  const inst = await keyFor(db, 'institution', { institutionId: instId });
  const first = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode: occ });
  const second = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode: occ });
  voucherNo = first.body.voucherNo;
  await claimVoucher(app, voucherNo, person, holder, 'wechat');
  await claimVoucher(app, second.body.voucherNo, person, holder, 'wechat');
  await request(app).post(`/v1/vouchers/${voucherNo}/activate`).set(bearer(holder)).send({ channel: 'wechat' }).expect(200);
  await request(app).post(`/v1/vouchers/${second.body.voucherNo}/activate`).set(bearer(holder)).send({}).expect(422);
  await request(app).post(`/v1/vouchers/${voucherNo}/enrol`).set(bearer(inst)).send({ classId: cls.classId, review: { passed: true } }).expect(200);
  for (const s of cls.sessionIds) await request(app).post(`/v1/vouchers/${voucherNo}/check-ins`).set(bearer(inst)).send({ sessionId: s }).expect(202);
  await request(app).post(`/v1/vouchers/${voucherNo}/complete`).set(bearer(inst)).send({ assessmentPassed: true }).expect(202);
  await env.client.workflow.getHandle(voucherWorkflowId(voucherNo)).result();
  await env.client.workflow.getHandle(voucherWorkflowId(second.body.voucherNo)).signal('revoke', { reason: 'test', by: 'test' });

  const histories = await Promise.all(
    [voucherNo, second.body.voucherNo].map((no) => env.client.workflow.getHandle(voucherWorkflowId(no)).fetchHistory()),
  );
  const jsons = histories.map((h) => historyToJSON(h));
  historyJson = jsons.join('\n');
  firstHistory = JSON.parse(jsons[0]!);
});

afterAll(async () => {
  await world?.stop();
});

test('no resident ID number, name, phone or bank account appears anywhere in the exported histories', () => {
  expect(historyJson.length).toBeGreaterThan(10_000);
  expect(historyJson).toContain('request-id'); // the headers were there to be searched
  for (const secret of [person.idNumber, person.name, person.phone, person.bankAccount]) {
    expect(historyJson).not.toContain(secret);
    expect(historyJson).not.toContain(Buffer.from(secret).toString('base64'));
  }
});

test('every payload in history except search attributes and the summary is encrypted (AES-256-GCM, key ID in metadata)', () => {
  const history = firstHistory;
  const payloads: { metadata?: Record<string, string>; data?: string }[] = [];
  const walk = (o: unknown) => {
    if (Array.isArray(o)) o.forEach(walk);
    else if (o && typeof o === 'object') {
      const r = o as Record<string, unknown>;
      if (r.metadata && typeof r.metadata === 'object' && 'encoding' in (r.metadata as object)) payloads.push(r as never);
      // Search attributes and the static summary stay readable by design (the server indexes and shows
      // them); they carry no personal data, which the test above checks.
      // The SDK's local-activity marker keeps its bookkeeping (sequence, activity type, times) in
      // plain `details.data`; the activity's result sits beside it, encrypted.
      else if (r.markerName !== undefined && r.details) walk({ ...(r.details as object), data: undefined });
      // Headers carry only the request ID (lib/request-id.ts), which the SDK does not pass through codecs.
      else Object.entries(r).forEach(([k, v]) => k !== 'searchAttributes' && k !== 'userMetadata' && k !== 'header' && walk(v));
    }
  };
  walk(history);
  expect(payloads.length).toBeGreaterThan(10);
  for (const p of payloads) {
    expect(Buffer.from(p.metadata!.encoding!, 'base64').toString()).toBe(ENCODING);
    expect(Buffer.from(p.metadata!['encryption-key-id']!, 'base64').toString()).toBe(testCodecKeys.current);
    expect(Buffer.from(p.data ?? '', 'base64').toString('latin1')).not.toContain(voucherNo);
  }
});

test('failure messages are encoded too (encodeCommonAttributes): the refusal text is not in history', () => {
  expect(historyJson).toContain('Encoded failure');
  expect(historyJson).not.toContain('quota for');
});

test('codec endpoint: an operator decodes; no key → 401, another role → 403; CORS only for the UI origin', async () => {
  const operator = await keyFor(db, 'operator');
  const hr = await keyFor(db, 'hr', { district: '330602' });
  const [enc] = await new AesGcmCodec(testCodecKeys).encode([{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify({ voucherNo })) }]);
  const body = { payloads: [{ metadata: Object.fromEntries(Object.entries(enc!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(enc!.data!).toString('base64') }] };

  const ok = await request(app).post('/codec/decode').set(bearer(operator)).set('Origin', UI_ORIGIN).send(body);
  expect(ok.status).toBe(200);
  expect(ok.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
  expect(JSON.parse(Buffer.from(ok.body.payloads[0].data, 'base64').toString())).toEqual({ voucherNo });

  expect((await request(app).post('/codec/decode').send(body)).status).toBe(401);
  expect((await request(app).post('/codec/decode').set(bearer(hr)).send(body)).status).toBe(403);
  const evil = await request(app).options('/codec/decode').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'POST');
  expect(evil.status).toBe(403);
  expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  const pre = await request(app).options('/codec/decode').set('Origin', UI_ORIGIN).set('Access-Control-Request-Method', 'POST');
  expect(pre.status).toBe(204);
  expect(pre.headers['access-control-allow-headers']).toContain('Authorization');
});

test('key rotation: payloads written under an old key still decode after a new current key is added', async () => {
  const old = new AesGcmCodec(testCodecKeys);
  const rotated = new AesGcmCodec(parseCodecKeys(`t1:${'3'.repeat(64)},t2:${'4'.repeat(64)}`, 't2'));
  const [written] = await old.encode([{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"x"') }]);
  const [back] = await rotated.decode([written!]);
  expect(Buffer.from(back!.data!).toString()).toBe('"x"');
  const [fresh] = await rotated.encode([{ metadata: {}, data: Buffer.from('y') }]);
  expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('t2');
  await expect(old.decode([fresh!])).rejects.toThrow(/unknown key t2/);
});
