/**
 * Issue 3 over the real API, a real worker (time-skipping server) and PostgreSQL: the person registry
 * (R1, R2.3, R2.4), single issuance refused with every eligibility reason (R1.2, R2.1, R2.3, R2.4),
 * Idempotency-Key on issue, claims after real-name verification (R2.7), and that no personal data
 * reaches any Temporal payload or search attribute, even after the payload codec is undone.
 */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Express } from 'express';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { createAllActivities } from '../activities';
import { type Db } from '../db/connection';
import { AesGcmCodec } from '../lib/codec';
import { localDate, localYear } from '../policy/calendar';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { bearer, keyFor, testApp } from './helpers/api';
import { ownDatabase, type OwnDatabase, testCodecKeys, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeInstitution } from './helpers/fixtures';

let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let app: Express;
let hr: string; // 330602 越城区
let own: OwnDatabase | undefined;
let hrOther: string; // 330683 嵊州市
const SHIFT = 7 * 365 * 86_400_000;

beforeAll(async () => {
  env = await timeSkippingEnv();
  // A database of its own, so the vouchers issued here never move the global counts other test files
  // compare before and after (they run in parallel).
  own = await ownDatabase('reg');
  db = own.db;
  const taskQueue = uniqueTaskQueue('issuance');
  worker = await testWorker(env, db, taskQueue, createAllActivities({ db }));
  running = worker.run();
  // The API's clock runs SHIFT ahead, in a year no other test file issues in, so the voucher counters
  // of that year count only this file's vouchers while other files run in parallel.
  app = testApp(db, env.client, taskQueue, () => Date.now() + SHIFT);
  hr = await keyFor(db, 'hr', { district: '330602' });
  hrOther = await keyFor(db, 'hr', { district: '330683' });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await own?.drop();
});

let serial = 0;
const runTag = String(Math.floor(Math.random() * 9000) + 1000);
/** A valid resident ID unique to this file and run (area 3306 9x is used by no other test). */
function residentId(): string {
  serial += 1;
  const body = `33069${runTag[0]}19${String(50 + (serial % 40)).padStart(2, '0')}${runTag.slice(1)}${String(serial).padStart(4, '0')}`.slice(0, 17);
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * weights[i]!;
  return body + '10X98765432'[sum % 11];
}

/** `n` consecutive months ending with this month (Asia/Shanghai), in `district`. */
function months(district: string, n: number): { district: string; month: string }[] {
  const [y, m] = localDate(Date.now(), 'Asia/Shanghai').split('-').map(Number) as [number, number];
  const out = [];
  for (let k = 0; k < n; k++) {
    const idx = y * 12 + (m - 1) - k;
    out.push({ district, month: `${Math.floor(idx / 12)}-${String((idx % 12) + 1).padStart(2, '0')}` });
  }
  return out;
}

function personBody(o: Record<string, unknown> = {}) {
  return {
    idNumber: residentId(),
    name: '张' + ['三', '四', '五', '六'][serial % 4] + String.fromCharCode(0x4e00 + serial),
    phone: '139' + String(10_000_000 + serial * 7919).slice(-8),
    bankAccount: '6222' + String(100_000_000_000 + serial).slice(-12),
    civilService: false,
    householdDistrict: null,
    residencePermitDistrict: null,
    employmentDistrict: null,
    employmentStatus: 'employed',
    uiContributions: [],
    uiPayingNow: null,
    unemploymentRegDistrict: null,
    eastWestPartner: false,
    priorityGroups: [],
    ...o,
  };
}

async function register(o: Record<string, unknown> = {}) {
  const body = personBody(o);
  const res = await request(app).post('/v1/persons').set(bearer(hr)).send(body);
  expect(res.status).toBe(201);
  return { body, personRef: res.body.personRef as string };
}

const counter = async () =>
  Number((await db('voucher_counters').where({ year: localYear(Date.now() + SHIFT, 'Asia/Shanghai') }).sum<{ n: string }[]>({ n: 'last' }))[0]?.n ?? 0);

describe('person registry', () => {
  test('R1.1 R2.3 R2.4 R3.13: HR registers a person; stored as keyed hash and ciphertext, the first account audited; GET answers masked values; re-registering updates and replaces the UI history', async () => {
    const body = personBody({ uiContributions: months('330602', 40), uiPayingNow: { district: '330602' }, priorityGroups: ['urban_dibao'], residencePermitDistrict: '330603' });
    const res = await request(app).post('/v1/persons').set(bearer(hr)).send(body);
    expect(res.status).toBe(201);
    const ref = testPii.personRef(body.idNumber);
    expect(res.body.personRef).toBe(ref);
    expect(res.body.idNumber).toBe('*'.repeat(14) + body.idNumber.slice(-4));
    expect(res.body.name).toBe(body.name[0] + '**');
    expect(res.body.phone).toBe('*'.repeat(7) + body.phone.slice(-4));
    expect(res.body.bankAccount).toBe('*'.repeat(12) + body.bankAccount.slice(-4));
    const raw = JSON.stringify(res.body);
    for (const secret of [body.idNumber, body.name, body.phone, body.bankAccount]) expect(raw).not.toContain(secret);

    const row = await db('persons').where({ person_ref: ref }).first();
    for (const secret of [body.idNumber, body.name, body.phone, body.bankAccount]) expect(JSON.stringify(row)).not.toContain(secret);
    expect(testPii.decrypt(row.id_number_enc)).toBe(body.idNumber);
    expect(row.residence_permit_district).toBe('330603');
    expect(row.priority_groups).toEqual(['urban_dibao']);
    expect(Number((await db('ui_contributions').where({ person_ref: ref }).count({ n: '*' }))[0]!.n)).toBe(40);
    // R3.13: the first registered account is audited with masked values only.
    expect(await db('account_changes').where({ person_ref: ref })).toEqual([expect.objectContaining({ old_masked: null, new_masked: '*'.repeat(12) + body.bankAccount.slice(-4) })]);

    const got = await request(app).get(`/v1/persons/${ref}`).set(bearer(hr));
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);

    // Update: same ID number → 200, history replaced whole (duplicates count once).
    const again = await request(app)
      .post('/v1/persons')
      .set(bearer(hr))
      .send({ ...body, uiContributions: [...months('330683', 3), ...months('330683', 3)], phone: '13700001111' });
    expect(again.status).toBe(200);
    expect(again.body.phone).toBe('*******1111');
    expect(again.body.uiContributions).toHaveLength(3);
    expect(await db('ui_contributions').where({ person_ref: ref, district: '330602' })).toHaveLength(0);
  });

  test('R2.3 R2.4: a malformed person record is refused with every field error and nothing is stored', async () => {
    const before = Number((await db('persons').count({ n: '*' }))[0]!.n);
    const body = personBody({
      householdDistrict: '330699', // under Shaoxing's prefix but not one of its six districts
      employmentStatus: 'retired',
      uiContributions: [{ district: '330602', month: '2024-13' }],
      uiPayingNow: { district: 'x' },
      priorityGroups: ['vip'],
      eastWestPartner: 'yes',
    });
    const res = await request(app).post('/v1/persons').set(bearer(hr)).send(body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body.code).toBe('INVALID_PERSON_RECORD');
    const paths = (res.body.errors as { path: string; code: string }[]).map((e) => `${e.path}:${e.code}`).sort();
    expect(paths).toEqual(
      [
        'eastWestPartner:INVALID_TYPE',
        'employmentStatus:INVALID_EMPLOYMENT_STATUS',
        'householdDistrict:UNKNOWN_SHAOXING_DISTRICT',
        'priorityGroups/0:UNKNOWN_PRIORITY_GROUP',
        'uiContributions/0/month:INVALID_MONTH',
        'uiPayingNow/district:INVALID_DISTRICT_CODE',
      ].sort(),
    );
    const badId = await request(app).post('/v1/persons').set(bearer(hr)).send({ ...personBody(), idNumber: '330602199001010012' });
    expect(badId.status).toBe(400);
    expect(badId.body.errors.map((e: { path: string }) => e.path)).toContain('idNumber');
    expect(Number((await db('persons').count({ n: '*' }))[0]!.n)).toBe(before);
  });

  test('R3.13: re-registering a person cannot change their bank account: that is the audited correction of HR of one of their districts', async () => {
    // Tied to 330602 (UI) and 330683 (household registration): HR of either may re-register them.
    const { body, personRef } = await register({ uiPayingNow: { district: '330602' }, householdDistrict: '330683' });
    const before = await db('persons').where({ person_ref: personRef }).first();
    // Re-registering with another account is refused, whoever does it, and nothing changes.
    const res = await request(app).post('/v1/persons').set(bearer(hrOther)).send({ ...body, bankAccount: '6222999988887777', phone: '13912345678' });
    expect({ status: res.status, code: res.body.code, rule: res.body.rule }).toEqual({ status: 409, code: 'ACCOUNT_CHANGE_NEEDS_CORRECTION', rule: 'R3.13' });
    expect(await db('persons').where({ person_ref: personRef }).first()).toEqual(before);
    // The same account (or none) re-registers as before.
    expect((await request(app).post('/v1/persons').set(bearer(hr)).send(body)).status).toBe(200);
    const { bankAccount: _omit, ...withoutAccount } = body;
    expect((await request(app).post('/v1/persons').set(bearer(hr)).send(withoutAccount)).status).toBe(200);
    expect(testPii.decrypt((await db('persons').where({ person_ref: personRef }).first()).bank_account_enc)).toBe(body.bankAccount);
    // The correction is out of reach of an unrelated district (404) and audited for the person's own.
    const hrUnrelated = await keyFor(db, 'hr', { district: '330604' });
    expect((await request(app).put(`/v1/persons/${personRef}/bank-account`).set(bearer(hrUnrelated)).send({ account: '6222999988887777' })).status).toBe(404);
    const fixed = await request(app).put(`/v1/persons/${personRef}/bank-account`).set(bearer(hr)).send({ account: '6222999988887777' });
    expect(fixed.status).toBe(200);
    expect(fixed.body).toMatchObject({ personRef, oldAccount: '*'.repeat(12) + body.bankAccount.slice(-4), newAccount: '************7777' });
    // Two audit rows: the account registered first, then the correction.
    expect((await db('account_changes').where({ person_ref: personRef }).orderBy('id')).map((c: { old_masked: string | null; new_masked: string }) => [c.old_masked, c.new_masked])).toEqual([
      [null, '*'.repeat(12) + body.bankAccount.slice(-4)],
      ['*'.repeat(12) + body.bankAccount.slice(-4), '************7777'],
    ]);
  });

  test('R2.1: only HR registers and reads persons; an unknown person is 404', async () => {
    const inst = await keyFor(db, 'institution', { institutionId: await makeInstitution(db) });
    expect((await request(app).post('/v1/persons').set(bearer(inst)).send(personBody())).status).toBe(403);
    const { personRef } = await register({ employmentDistrict: '330602' });
    expect((await request(app).get(`/v1/persons/${personRef}`).set(bearer(inst))).status).toBe(403);
    expect((await request(app).get(`/v1/persons/P${'0'.repeat(40)}`).set(bearer(hr))).status).toBe(404);
  });
});

describe('registry scope', () => {
  test('R2.4: a district HR registers only people its record ties to the district, and reads only those (or people it issued to); others are 404 as for an unknown person', async () => {
    const before = Number((await db('persons').count({ n: '*' }))[0]!.n);
    // Nothing ties this record to 330602: refused, nothing stored.
    const far = personBody({ employmentDistrict: '330683', uiPayingNow: { district: '330683' } });
    const refused = await request(app).post('/v1/persons').set(bearer(hr)).send(far);
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'NO_LINK_TO_DISTRICT', rule: 'R2.4' });
    expect(Number((await db('persons').count({ n: '*' }))[0]!.n)).toBe(before);
    // Registered by its own district (嵊州市), it is that district's to read, not 越城区's.
    const own = await request(app).post('/v1/persons').set(bearer(hrOther)).send(far);
    expect(own.status).toBe(201);
    const ref = own.body.personRef as string;
    expect((await request(app).get(`/v1/persons/${ref}`).set(bearer(hrOther))).status).toBe(200);
    const hidden = await request(app).get(`/v1/persons/${ref}`).set(bearer(hr));
    expect(hidden.status).toBe(404);
    expect(hidden.body.code).toBe('PERSON_NOT_FOUND');
    // Any tie counts: UI months once paid in 越城区 make the person 越城区's to read too.
    const moved = await request(app).post('/v1/persons').set(bearer(hrOther)).send({ ...far, uiContributions: months('330602', 2) });
    expect(moved.status).toBe(200);
    expect((await request(app).get(`/v1/persons/${ref}`).set(bearer(hr))).status).toBe(200);
  });
});

describe('single issuance with eligibility', () => {
  test('R2.3: a general voucher needs UI paid now in the issuing district and 36 months there; the 422 lists every reason and issues nothing', async () => {
    const short = await register({ uiContributions: [...months('330602', 12), ...months('330603', 40)], uiPayingNow: { district: '330603' } });
    const before = await counter();
    const res = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: short.body.idNumber });
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body).toMatchObject({ code: 'UI_NOT_PAID_IN_DISTRICT', rule: 'R2.3' });
    expect(res.body.reasons.map((r: { code: string }) => r.code)).toEqual(['UI_NOT_PAID_IN_DISTRICT', 'UI_MONTHS_IN_DISTRICT_BELOW_MIN']);
    expect(res.body.reasons.every((r: { rule: string; detail: string }) => r.rule === 'R2.3' && r.detail.length > 0)).toBe(true);
    expect(await counter()).toBe(before);

    // Months elsewhere do not count (R2.3 "in that district"); 36 in the district do.
    const ok = await register({ uiContributions: months('330602', 36), uiPayingNow: { district: '330602' } });
    const issued = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: ok.body.idNumber });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ type: 'general', status: 'issued', issuerDistrict: '330602' });
    expect(issued.headers.location).toBe(`/v1/vouchers/${issued.body.voucherNo}`);
    // One month short in the district: refused with have/need from the policy.
    const thirtyFive = await register({ uiContributions: months('330602', 35), uiPayingNow: { district: '330602' } });
    const refused = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: thirtyFive.body.idNumber });
    expect(refused.status).toBe(422);
    expect(refused.body.reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', rule: 'R2.3', detail: 'have 35, need 36' })]);
  });

  test('R1.2: civil-service establishment staff are refused every voucher kind, with every other failing reason too', async () => {
    const p = await register({ civilService: true, employmentDistrict: '330602' });
    const directed = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: p.body.idNumber, occupationCode: '4-01-01' });
    expect(directed.status).toBe(422);
    expect(directed.body).toMatchObject({ code: 'CIVIL_SERVICE_EXCLUDED', rule: 'R1.2' });
    expect(directed.body.reasons.map((r: { code: string }) => r.code)).toEqual(['CIVIL_SERVICE_EXCLUDED']);
    const general = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: p.body.idNumber });
    expect(general.status).toBe(422);
    expect(general.body.code).toBe('CIVIL_SERVICE_EXCLUDED');
    expect(general.body.reasons.map((r: { code: string }) => r.code)).toEqual(['CIVIL_SERVICE_EXCLUDED', 'UI_NOT_PAID_IN_DISTRICT', 'UI_MONTHS_IN_DISTRICT_BELOW_MIN']);
  });

  test('R2.4: a directed voucher needs a link to the issuing district; the record\'s priority groups are recorded on the voucher', async () => {
    const p = await register({ employmentStatus: 'unemployed', residencePermitDistrict: '330602', priorityGroups: ['employment_difficulty', 'zero_employment_family'] });
    const res = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: p.body.idNumber, occupationCode: '4-01-01' });
    expect(res.status).toBe(201);
    expect(res.body.priorityGroups).toEqual(['employment_difficulty', 'zero_employment_family']);
    const s = await env.client.workflow.getHandle(voucherWorkflowId(res.body.voucherNo)).query('state');
    expect((s as { priorityGroups: string[] }).priorityGroups).toEqual(['employment_difficulty', 'zero_employment_family']);

    // Same person, another district: no link → 422 NO_LINK_TO_DISTRICT (priority groups never make eligible).
    const before = await counter();
    const other = await request(app).post('/v1/vouchers').set(bearer(hrOther)).send({ type: 'directed', idNumber: p.body.idNumber, occupationCode: '4-01-01' });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ code: 'NO_LINK_TO_DISTRICT', rule: 'R2.4', reasons: [expect.objectContaining({ code: 'NO_LINK_TO_DISTRICT', rule: 'R2.4' })] });
    expect(await counter()).toBe(before);

    // An east–west partner-area person is linked to any district.
    const ew = await register({ employmentStatus: null, eastWestPartner: true });
    expect((await request(app).post('/v1/vouchers').set(bearer(hrOther)).send({ type: 'directed', idNumber: ew.body.idNumber })).status).toBe(201);
    // An unknown priority group tag added at issue is refused.
    const tag = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: p.body.idNumber, priorityGroups: ['vip'] });
    expect(tag.status).toBe(400);
    expect(tag.body.code).toBe('UNKNOWN_PRIORITY_GROUP');
  });

  test('R2.1: unregistered person → 422 PERSON_NOT_REGISTERED; a general voucher with an occupation → 400', async () => {
    const unknown = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: residentId() });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ code: 'PERSON_NOT_REGISTERED', rule: 'R2.1' });
    const ok = await register({ uiContributions: months('330602', 36), uiPayingNow: { district: '330602' } });
    const occ = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'general', idNumber: ok.body.idNumber, occupationCode: '4-01-01' });
    expect(occ.status).toBe(400);
    expect(occ.body.rule).toBe('R2.2');
  });

  test('R2.1: Idempotency-Key on issue: same key and body → the first answer and no second voucher; same key, other body → 409', async () => {
    const p = await register({ employmentDistrict: '330602' });
    const body = { type: 'directed', idNumber: p.body.idNumber, occupationCode: '4-01-01' };
    const first = await request(app).post('/v1/vouchers').set(bearer(hr)).set('Idempotency-Key', `iss-${runTag}`).send(body);
    expect(first.status).toBe(201);
    const before = await counter();
    const again = await request(app).post('/v1/vouchers').set(bearer(hr)).set('Idempotency-Key', `iss-${runTag}`).send(body);
    expect(again.status).toBe(201);
    expect(again.body.voucherNo).toBe(first.body.voucherNo);
    expect(await counter()).toBe(before);
    const other = await request(app).post('/v1/vouchers').set(bearer(hr)).set('Idempotency-Key', `iss-${runTag}`).send({ ...body, occupationCode: '4-01-02' });
    expect(other.status).toBe(409);
    expect(await counter()).toBe(before);
  });
});

describe('claim through a channel (R2.7)', () => {
  test('R2.7: the holder claims through a channel only when name, ID number and phone match the registry; recorded once', async () => {
    const p = await register({ employmentDistrict: '330602' });
    const v = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: p.body.idNumber });
    expect(v.status).toBe(201);
    const no = v.body.voucherNo as string;
    const holder = await keyFor(db, 'holder', { personRef: p.personRef });
    const claim = { channel: 'alipay', name: p.body.name, idNumber: p.body.idNumber, phone: p.body.phone };

    for (const bad of [{ name: '李四' }, { phone: '13000000000' }, { idNumber: residentId() }]) {
      const r = await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(holder)).send({ ...claim, ...bad });
      expect(r.status).toBe(422);
      expect(r.body).toMatchObject({ code: 'IDENTITY_MISMATCH', rule: 'R2.7' });
    }
    expect(await db('voucher_claims').where({ voucher_no: no })).toHaveLength(0);

    // Another person's holder key: the voucher does not exist for them.
    const stranger = await register({ employmentDistrict: '330602' });
    const strangerKey = await keyFor(db, 'holder', { personRef: stranger.personRef });
    expect((await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(strangerKey)).send(claim)).status).toBe(404);
    expect((await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(hr)).send(claim)).status).toBe(403);
    expect((await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(holder)).send({ ...claim, channel: 'fax' })).status).toBe(400);

    const ok = await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(holder)).send(claim);
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ voucherNo: no, channel: 'alipay', alreadyClaimed: false });
    expect(ok.body.claimedAt).toMatch(/\+08:00$/);
    const again = await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(holder)).send({ ...claim, channel: 'wechat' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ channel: 'alipay', alreadyClaimed: true });
    expect(await db('voucher_claims').where({ voucher_no: no })).toEqual([expect.objectContaining({ channel: 'alipay', person_ref: p.personRef })]);
  });
});

/** Every payload of a history, with the payload codec undone, as text. */
async function decodedPayloadText(history: unknown): Promise<string> {
  const codec = new AesGcmCodec(testCodecKeys);
  const found: { metadata?: Record<string, Uint8Array>; data?: Uint8Array }[] = [];
  const walk = (o: unknown) => {
    if (!o || typeof o !== 'object' || o instanceof Uint8Array) return;
    if (Array.isArray(o)) return o.forEach(walk);
    const r = o as Record<string, unknown>;
    if (r.metadata && typeof r.metadata === 'object' && r.data instanceof Uint8Array) found.push(r as never);
    Object.values(r).forEach(walk);
  };
  walk(history);
  const out: string[] = [];
  for (const p of found) {
    const [plain] = await codec.decode([p as never]);
    out.push(Buffer.from((plain as { data?: Uint8Array }).data ?? new Uint8Array()).toString('utf8'));
  }
  return out.join('\n');
}

test('R2.1 R2.7: no resident ID number, name or phone appears in any Temporal payload (decoded), search attribute or summary of issued vouchers', async () => {
  const people = [];
  for (let i = 0; i < 3; i++) people.push(await register({ employmentDistrict: '330602', uiContributions: months('330602', 36), uiPayingNow: { district: '330602' }, priorityGroups: ['urban_dibao'] }));
  const nos: string[] = [];
  for (const [i, p] of people.entries()) {
    const r = await request(app).post('/v1/vouchers').set(bearer(hr)).send(i === 0 ? { type: 'general', idNumber: p.body.idNumber } : { type: 'directed', idNumber: p.body.idNumber, occupationCode: '4-01-01' });
    expect(r.status).toBe(201);
    nos.push(r.body.voucherNo);
    const holder = await keyFor(db, 'holder', { personRef: p.personRef });
    expect((await request(app).post(`/v1/vouchers/${r.body.voucherNo}/claim`).set(bearer(holder)).send({ channel: 'zlb', name: p.body.name, idNumber: p.body.idNumber, phone: p.body.phone })).status).toBe(201);
  }
  let text = '';
  for (const no of nos) {
    const h = env.client.workflow.getHandle(voucherWorkflowId(no));
    const history = await h.fetchHistory();
    const desc = await h.describe();
    text += historyToJSON(history) + '\n' + (await decodedPayloadText(history)) + '\n' + JSON.stringify(desc.raw.workflowExecutionInfo?.searchAttributes ?? {}) + '\n' + (await desc.staticSummary());
    expect(await decodedPayloadText(history)).toContain(people[nos.indexOf(no)]!.personRef); // the decode really worked
  }
  expect(text.length).toBeGreaterThan(5_000);
  for (const p of people) {
    for (const secret of [p.body.idNumber, p.body.name, p.body.phone, p.body.bankAccount]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    }
  }
});
