/**
 * The HTTP API over a real worker (time-skipping server) and PostgreSQL: every action of the voucher
 * lifecycle, its refusals as problem+json with the rule ID, scopes, and that refused requests change nothing.
 */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Express } from 'express';
import type { Db } from '../db/connection';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { stateQuery } from '../workflows/voucher/messages';
import { connectClient } from '../lib/temporal-connection';
import { bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { testCodecKeys, testPii, testWorker, uniqueTaskQueue } from './helpers/env';
import { timeSkippingWorld, type World } from './helpers/world';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, makeResidentId, uniqueOccupation, type PersonFixture } from './helpers/fixtures';

const DAY = 86_400_000;
let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let app: Express;
let hr: string;
let hrOther: string;
let operator: string;

beforeAll(async () => {
  world = await timeSkippingWorld('api');
  ({ env, db } = world);
  const taskQueue = world.taskQueue;
  app = testApp(db, env.client, taskQueue);
  hr = await keyFor(db, 'hr', { district: '330602' });
  hrOther = await keyFor(db, 'hr', { district: '330683' });
  operator = await keyFor(db, 'operator');
});

afterAll(async () => {
  await world?.stop();
});

/** Issued by HR and (unless `claim` is false) claimed by the holder through a channel (R2.7). */
async function issued(type: 'general' | 'directed', occupationCode?: string, o: { claim?: boolean; person?: PersonFixture } = {}) {
  const person = o.person ?? (await makePerson(db, testPii));
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  const res = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type, idNumber: person.idNumber, ...(occupationCode ? { occupationCode } : {}) });
  expect(res.status).toBe(201);
  const voucherNo = res.body.voucherNo as string;
  if (o.claim !== false) await claimVoucher(app, voucherNo, person, holder);
  return { person, holder, voucherNo, body: res.body };
}

/**
 * Voucher numbers allocated in one far-future year: an app whose clock runs SHIFT ahead numbers its
 * vouchers in that year, which no other test file (running in parallel) issues in.
 */
const SHIFT = 40 * 365 * 86_400_000;
async function voucherCount(): Promise<number> {
  const year = new Date(Date.now() + SHIFT + 8 * 3_600_000).getUTCFullYear();
  const r = await db('voucher_counters').where({ year }).sum<{ n: string }[]>({ n: 'last' });
  return Number(r[0]?.n ?? 0);
}

describe('issue', () => {
  test('R2.1 R2.7: HR issues a voucher; the answer carries the claim deadline (no activation deadline until claimed) and no personal data', async () => {
    const { body, person } = await issued('general', undefined, { claim: false });
    expect(body.status).toBe('issued');
    expect(body.issuerDistrict).toBe('330602');
    expect(body.issuedAt).toMatch(/\+08:00$/);
    expect(body.claimDeadline).toMatch(/\+08:00$/);
    expect(body.activationDeadline).toBeNull();
    expect(JSON.stringify(body)).not.toContain(person.idNumber);
    expect(JSON.stringify(body)).not.toContain(person.name);
    const desc = await env.client.workflow.getHandle(voucherWorkflowId(body.voucherNo)).describe();
    expect(await desc.staticSummary()).toBe(`${body.voucherNo} · general · 330602`);
  });

  test('R2.1 R2.5 R2.7: with no worker up, HR\'s issue still answers and lists the voucher; reads and a claim answer 503 + Retry-After and change nothing', async () => {
    // An app on a task queue no worker polls: the voucher is started but never takes a workflow task.
    const idleQueue = uniqueTaskQueue('api-idle');
    // Its client built as the API process builds it (lib/temporal-connection.ts), with a 1 s query bound.
    const native = await connectClient(env.address, 'default', testCodecKeys, undefined, 1_000);
    const idle = testApp(db, native, idleQueue);
    const person = await makePerson(db, testPii);
    const res = await request(idle).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: person.idNumber });
    expect(res.status).toBe(201);
    const voucherNo = res.body.voucherNo as string;
    const handle = env.client.workflow.getHandle(voucherWorkflowId(voucherNo));
    try {
      expect(res.body).toMatchObject({ voucherNo, status: 'issued', type: 'general', issuerDistrict: '330602' });
      expect(res.body.claimDeadline).toMatch(/\+08:00$/);
      const d = await handle.describe();
      expect(d.status.name).toBe('RUNNING');
      expect(d.historyLength).toBe(2); // started, first task scheduled: nothing has run it
      const listed = await request(app).get('/v1/vouchers').query({ personRef: person.personRef }).set(bearer(hr));
      expect(listed.status).toBe(200);
      expect(listed.body.items).toEqual([res.body]);
      expect((await db('vouchers').where({ voucher_no: voucherNo }).first()).revision).toBe(0);
      // Reading the voucher needs its workflow, and so does claiming it: a bounded wait, then 503.
      const read = await request(idle).get(`/v1/vouchers/${voucherNo}`).set(bearer(hr));
      expect(read.status).toBe(503);
      expect(read.body.code).toBe('TEMPORAL_UNAVAILABLE');
      expect(read.headers['retry-after']).toEqual(expect.any(String));
      const holder = await keyFor(db, 'holder', { personRef: person.personRef });
      const claim = await request(idle).post(`/v1/vouchers/${voucherNo}/claim`).set(bearer(holder)).send({ channel: 'zlb', name: person.name, idNumber: person.idNumber, phone: person.phone });
      expect(claim.status).toBe(503);
      expect(claim.body.code).toBe('TEMPORAL_UNAVAILABLE');
      expect(claim.headers['retry-after']).toEqual(expect.any(String));
      expect((await handle.describe()).historyLength).toBe(2); // no Update was sent
      // A worker comes up: the voucher runs from there, and answers what the issue answered.
      const late = await testWorker(env, db, idleQueue);
      const shown = await late.runUntil(async () => request(app).get(`/v1/vouchers/${voucherNo}`).set(bearer(hr)));
      expect(shown.status).toBe(200);
      expect(shown.body).toEqual(res.body); // still issued: the refused claim left nothing behind
      expect(await db('voucher_claims').where({ voucher_no: voucherNo })).toHaveLength(0);
    } finally {
      // (The time-skipping server does not skip time past a workflow task nobody took, even once the
      // workflow is terminated: the worker above has taken it.)
      await handle.terminate('test cleanup');
      await native.connection.close();
    }
  });

  test('bad input gets a 4xx problem and issues nothing: malformed ID, unknown person, extra field, no key, wrong role', async () => {
    const app = testApp(db, env.client, world.taskQueue, () => Date.now() + SHIFT);
    const before = await voucherCount();
    const bad = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: '330602199001010012' });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toContain('application/problem+json');
    expect(bad.body.code).toBe('INVALID_REQUEST');
    const unknown = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: makeResidentId('19850505') });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ code: 'PERSON_NOT_REGISTERED', rule: 'R2.1' });
    const extra = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: makeResidentId(), amount: 1 });
    expect(extra.status).toBe(400);
    const malformed = await request(app).post('/v1/vouchers').set(bearer(hr)).set('content-type', 'application/json').send('{"type":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('MALFORMED_JSON');
    expect((await request(app).post('/v1/vouchers').send({ type: 'general' })).status).toBe(401);
    expect((await request(app).post('/v1/vouchers').set(bearer(operator)).send({ type: 'general', idNumber: makeResidentId() })).status).toBe(403);
    expect(await voucherCount()).toBe(before);
    // The count can move: a good request through the same app allocates one number.
    const p = await makePerson(db, testPii);
    expect((await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: p.idNumber, occupationCode: '4-01-01' })).status).toBe(201);
    expect(await voucherCount()).toBe(before + 1);
  });

  test('R1.2: civil-service establishment staff are refused with the rule ID', async () => {
    const p = await makePerson(db, testPii, { civilService: true });
    const res = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: p.idNumber, occupationCode: '4-01-01' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'CIVIL_SERVICE_EXCLUDED', rule: 'R1.2' });
  });

  test('scopes: another district’s HR and another holder see 404, as for a voucher that does not exist', async () => {
    const { voucherNo } = await issued('general');
    const stranger = await keyFor(db, 'holder', { personRef: 'Pnobody' });
    for (const key of [hrOther, stranger]) {
      const r = await request(app).get(`/v1/vouchers/${voucherNo}`).set(bearer(key));
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('VOUCHER_NOT_FOUND');
    }
    const missing = await request(app).get('/v1/vouchers/SX3306022026999999').set(bearer(operator));
    expect(missing.body.code).toBe('VOUCHER_NOT_FOUND');
    expect((await request(app).get(`/v1/vouchers/${voucherNo}`).set(bearer(operator))).status).toBe(200);
  });
});

describe('activate, enrol, check in, complete', () => {
  test('R3.1 R3.4: the holder activates once; a second activation is refused (409) and a second voucher in the year hits the quota (422)', async () => {
    const a = await issued('general');
    const r1 = await request(app).post(`/v1/vouchers/${a.voucherNo}/activate`).set(bearer(a.holder)).send({ channel: 'alipay' });
    expect(r1.status).toBe(200);
    expect(r1.body.status).toBe('activated');
    const r2 = await request(app).post(`/v1/vouchers/${a.voucherNo}/activate`).set(bearer(a.holder)).send({});
    expect(r2.status).toBe(409);
    expect(r2.body.code).toBe('VOUCHER_NOT_AWAITING_ACTIVATION');
    // A second voucher for the same person, same year.
    const second = await issued('general', undefined, { person: a.person });
    const r3 = await request(app).post(`/v1/vouchers/${second.voucherNo}/activate`).set(bearer(a.holder)).send({});
    expect(r3.status).toBe(422);
    expect(r3.body).toMatchObject({ code: 'ANNUAL_QUOTA_USED', rule: 'R3.4' });
    expect((await env.client.workflow.getHandle(voucherWorkflowId(second.voucherNo)).query(stateQuery)).status).toBe('claimed');
  });

  test('R2.7: an issued voucher cannot be activated before the holder claims it; after the claim it can', async () => {
    const v = await issued('general', undefined, { claim: false });
    const early = await request(app).post(`/v1/vouchers/${v.voucherNo}/activate`).set(bearer(v.holder)).send({});
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ code: 'VOUCHER_NOT_CLAIMED', rule: 'R2.7' });
    expect(await db('activation_quota').where({ voucher_no: v.voucherNo })).toHaveLength(0);
    const claim = await claimVoucher(app, v.voucherNo, v.person, v.holder, 'wechat');
    expect(claim.status).toBe(201);
    expect(claim.body).toMatchObject({ status: 'claimed', channel: 'wechat', alreadyClaimed: false });
    expect(claim.body.activationDeadline).toMatch(/\+08:00$/);
    const seen = await request(app).get(`/v1/vouchers/${v.voucherNo}`).set(bearer(v.holder));
    expect(seen.body).toMatchObject({ status: 'claimed', claimChannel: 'wechat', claimedAt: claim.body.claimedAt, activationDeadline: claim.body.activationDeadline });
    const ok = await request(app).post(`/v1/vouchers/${v.voucherNo}/activate`).set(bearer(v.holder)).send({});
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('activated');
  });

  test('R3.7: enrolling a directed voucher in a class of another occupation is refused and leaves it activated; R4.4: an institution under rectification cannot enrol', async () => {
    const occ = uniqueOccupation();
    const v = await issued('directed', occ);
    await request(app).post(`/v1/vouchers/${v.voucherNo}/activate`).set(bearer(v.holder)).send({});
    const instId = await makeInstitution(db);
    const inst = await keyFor(db, 'institution', { institutionId: instId });
    const other = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) + 7 * DAY, occupationCode: uniqueOccupation() });
    const r = await request(app).post(`/v1/vouchers/${v.voucherNo}/enrol`).set(bearer(inst)).send({ classId: other.classId, review: { passed: true } });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'OCCUPATION_MISMATCH', rule: 'R3.7' });
    expect(await db('enrolments').where({ voucher_no: v.voucherNo })).toHaveLength(0);

    const rectId = await makeInstitution(db, 'rectification');
    const rect = await keyFor(db, 'institution', { institutionId: rectId });
    const cls = await makeClass(db, { institutionId: rectId, firstStart: (await env.currentTimeMs()) + 7 * DAY, occupationCode: occ });
    const r2 = await request(app).post(`/v1/vouchers/${v.voucherNo}/enrol`).set(bearer(rect)).send({ classId: cls.classId, review: { passed: true } });
    expect(r2.status).toBe(422);
    expect(r2.body).toMatchObject({ code: 'INSTITUTION_UNDER_RECTIFICATION', rule: 'R4.4' });
    // Another institution's class: looks like a missing class.
    const r3 = await request(app).post(`/v1/vouchers/${v.voucherNo}/enrol`).set(bearer(inst)).send({ classId: cls.classId, review: { passed: true } });
    expect(r3.status).toBe(404);
    expect((await env.client.workflow.getHandle(voucherWorkflowId(v.voucherNo)).query(stateQuery)).status).toBe('activated');
  });

  test('R3.9 R3.10: a directed voucher from issue to settled through the API; duplicate check-ins count once', async () => {
    const occ = uniqueOccupation();
    const instId = await makeInstitution(db);
    const inst = await keyFor(db, 'institution', { institutionId: instId });
    const cls = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) + 7 * DAY, occupationCode: occ, sessions: 10 });
    await makeCatalogueEntry(db, { occupationCode: occ, level: cls.level, amountFen: 88_800 });
    const v = await issued('directed', occ);
    expect((await request(app).post(`/v1/vouchers/${v.voucherNo}/activate`).set(bearer(v.holder)).send({})).status).toBe(200);
    const en = await request(app).post(`/v1/vouchers/${v.voucherNo}/enrol`).set(bearer(inst)).send({ classId: cls.classId, review: { passed: true, note: 'entry conditions checked' } });
    expect(en.status).toBe(200);
    expect(en.body.status).toBe('in_training');
    for (const s of cls.sessionIds.slice(0, 6)) {
      const r = await request(app).post(`/v1/vouchers/${v.voucherNo}/check-ins`).set(bearer(inst)).send({ sessionId: s });
      expect(r.status).toBe(202);
    }
    const dup = await request(app).post(`/v1/vouchers/${v.voucherNo}/check-ins`).set(bearer(inst)).send({ sessionId: cls.sessionIds[0] });
    expect(dup.body).toMatchObject({ counted: false, duplicate: true });
    // One attendance report per session, held by its primary key (R3.10).
    expect(await db('attendance_reports').where({ voucher_no: v.voucherNo })).toHaveLength(6);
    const notInPlan = await request(app).post(`/v1/vouchers/${v.voucherNo}/check-ins`).set(bearer(inst)).send({ sessionId: 'S99' });
    expect(notInPlan.status).toBe(422);
    const state = await request(app).get(`/v1/vouchers/${v.voucherNo}`).set(bearer(inst));
    expect(state.body.checkInRate).toBe(60);
    expect((await request(app).post(`/v1/vouchers/${v.voucherNo}/complete`).set(bearer(inst)).send({ assessmentPassed: true })).status).toBe(202);
    const result = await env.client.workflow.getHandle(voucherWorkflowId(v.voucherNo)).result();
    expect(result.status).toBe('settled');
    const rows = await db('disbursements').where({ voucher_no: v.voucherNo });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ amount_fen: 88_800, payee_ref: instId, payer_district: '330602' });
    const after = await request(app).post(`/v1/vouchers/${v.voucherNo}/complete`).set(bearer(inst)).send({ assessmentPassed: true });
    expect(after.status).toBe(409);
  });

  test('R3.3: HR revokes an issued voucher; the holder can no longer claim or activate it', async () => {
    const v = await issued('general', undefined, { claim: false });
    expect((await request(app).post(`/v1/vouchers/${v.voucherNo}/revoke`).set(bearer(hrOther)).send({ reason: 'x' })).status).toBe(404);
    expect((await request(app).post(`/v1/vouchers/${v.voucherNo}/revoke`).set(bearer(hr)).send({ reason: 'duplicate issue' })).status).toBe(202);
    const res = await env.client.workflow.getHandle(voucherWorkflowId(v.voucherNo)).result();
    expect(res.status).toBe('revoked');
    const act = await request(app).post(`/v1/vouchers/${v.voucherNo}/activate`).set(bearer(v.holder)).send({});
    expect(act.status).toBe(409);
    const claim = await request(app)
      .post(`/v1/vouchers/${v.voucherNo}/claim`)
      .set(bearer(v.holder))
      .send({ channel: 'zlb', name: v.person.name, idNumber: v.person.idNumber, phone: v.person.phone });
    expect(claim.status).toBe(409);
    expect(claim.body.code).toBe('VOUCHER_CLOSED');
    expect(await db('voucher_claims').where({ voucher_no: v.voucherNo })).toHaveLength(0);
  });
});

describe('lists', () => {
  test('the voucher list comes from the read model, scoped and cursor-paginated; filters narrow, never widen', async () => {
    const hrList = await keyFor(db, 'hr', { district: '330681' });
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await makePerson(db, testPii, { uiDistrict: '330681' });
      const r = await request(app).post('/v1/vouchers').set(bearer(hrList)).send({ type: 'general', idNumber: p.idNumber });
      mine.push(r.body.voucherNo);
    }
    // The read model is written by the workflow's projection; wait until all three are there.
    for (let i = 0; i < 50 && (await db('vouchers').whereIn('voucher_no', mine)).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/vouchers?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await request(app).get(url).set(bearer(hrList));
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((v: { voucherNo: string }) => v.voucherNo));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...mine].sort());
    // Another district's HR asking for this district still sees only its own.
    const other = await request(app).get('/v1/vouchers?district=330681').set(bearer(hrOther));
    expect(other.body.items).toEqual([]);
    expect((await request(app).get('/v1/vouchers?limit=1000').set(bearer(hrList))).status).toBe(400);
    expect((await request(app).get('/v1/vouchers?status=bogus').set(bearer(hrList))).status).toBe(400);
  });
});

describe('enrolment windows', () => {
  test('R4.2: once a class has started only people on its roster may enrol; R3.7 the institution’s review is recorded', async () => {
    const occ = uniqueOccupation();
    const instId = await makeInstitution(db);
    const inst = await keyFor(db, 'institution', { institutionId: instId });
    const started = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) - DAY, occupationCode: occ, sessions: 3 });
    const outsider = await issued('directed', occ);
    await request(app).post(`/v1/vouchers/${outsider.voucherNo}/activate`).set(bearer(outsider.holder)).send({}).expect(200);
    const refused = await request(app).post(`/v1/vouchers/${outsider.voucherNo}/enrol`).set(bearer(inst)).send({ classId: started.classId, review: { passed: true } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'CLASS_STARTED_NOT_ON_ROSTER', rule: 'R4.2' });
    expect(await db('enrolments').where({ voucher_no: outsider.voucherNo })).toHaveLength(0);

    const listed = await issued('directed', occ);
    await db('class_roster').insert({ class_id: started.classId, person_ref: listed.person.personRef });
    await request(app).post(`/v1/vouchers/${listed.voucherNo}/activate`).set(bearer(listed.holder)).send({}).expect(200);
    const ok = await request(app).post(`/v1/vouchers/${listed.voucherNo}/enrol`).set(bearer(inst)).send({ classId: started.classId, review: { passed: true, note: 'certificate level checked' } });
    expect(ok.status).toBe(200);
    expect(await db('enrolments').where({ voucher_no: listed.voucherNo }).first()).toMatchObject({ review_passed: true, review_note: 'certificate level checked' });
  });

  test('R3.2 R3.3: an activated voucher past its use deadline cannot be enrolled', async () => {
    const occ = uniqueOccupation();
    const instId = await makeInstitution(db);
    const inst = await keyFor(db, 'institution', { institutionId: instId });
    const v = await issued('directed', occ);
    const act = await request(app).post(`/v1/vouchers/${v.voucherNo}/activate`).set(bearer(v.holder)).send({});
    const handle = env.client.workflow.getHandle(voucherWorkflowId(v.voucherNo));
    const useDeadline = (await handle.query(stateQuery)).useDeadline!;
    expect(act.body.useDeadline).toMatch(/\+08:00$/);
    await env.sleep(useDeadline - (await env.currentTimeMs()) + 60_000);
    expect((await handle.result()).status).toBe('expired');
    const cls = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) + 7 * DAY, occupationCode: occ, sessions: 2 });
    const r = await request(app).post(`/v1/vouchers/${v.voucherNo}/enrol`).set(bearer(inst)).send({ classId: cls.classId, review: { passed: true } });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('VOUCHER_CLOSED');
    expect(await db('enrolments').where({ voucher_no: v.voucherNo })).toHaveLength(0);
  });
});
