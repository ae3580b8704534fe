/**
 * Settlement and money over the real API, PostgreSQL and a time-skipping Temporal server: the
 * catalogue (R3.11), the certificate registry (R3.13), budgets and their queue (R3.12), settlement
 * batches with files, stamping and reconciliation (R3.13), account corrections and clawbacks (R4.5).
 */
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import ExcelJS from 'exceljs';
import { createHash } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Express } from 'express';
import { createAllActivities } from '../activities';
import { createActivities, type SettleInput } from '../activities/voucher-activities';
import { fenToYuan } from '../activities/settlement-files';
import { batchNumber } from '../activities/settlement-activities';
import type { Db } from '../db/connection';
import { settlementBatchWorkflow } from '../workflows/settlement/batch';
import { settlementBatchWorkflowId } from '../workflows/settlement/contract';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { institutionStateQuery } from '../workflows/training/messages';
import { institutionWorkflowId } from '../workflows/training/contract';
import { localDate, localYear } from '../policy/calendar';
import { bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { testDb, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uid, uniqueOccupation, type PersonFixture } from './helpers/fixtures';

const DAY = 86_400_000;
const ZONE = 'Asia/Shanghai';
const FUND = 'ui_employment_promotion';
let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let app: Express;
let taskQueue: string;
let acts: ReturnType<typeof createActivities>;

beforeAll(async () => {
  env = await timeSkippingEnv();
  db = testDb();
  taskQueue = uniqueTaskQueue('money');
  const deps = { db, pii: testPii };
  worker = await testWorker(env, db, taskQueue, createAllActivities(deps));
  running = worker.run();
  app = testApp(db, env.client, taskQueue);
  acts = createActivities({ db });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

let seq = 0;
const fakeVoucherNo = (district: string) => `SX${district}2099${String(Date.now() % 1000 + (seq += 1) * 1000).slice(-6).padStart(6, '0')}`;

/** An approved general voucher settled directly by the settlement activity (payer: the person's UI district). */
async function settleGeneral(district: string, amountFen: number, o: { person?: PersonFixture; fund?: string } = {}) {
  const person = o.person ?? (await makePerson(db, testPii, { uiDistrict: district }));
  const occupationCode = uniqueOccupation();
  await makeCatalogueEntry(db, { occupationCode, level: '4', amountFen, fundingSource: o.fund ?? FUND });
  const certificateNo = uid('CERT');
  await db('certificates').insert({ certificate_no: certificateNo, person_ref: person.personRef, occupation_code: occupationCode, level: '4', issued_on: '2026-01-01' });
  let voucherNo = fakeVoucherNo(district);
  while (await db('subsidy_decisions').where({ voucher_no: voucherNo }).first()) voucherNo = fakeVoucherNo(district);
  const input: SettleInput = {
    voucherNo,
    type: 'general',
    issuerDistrict: district,
    personRef: person.personRef,
    classPlan: { classId: 'CLS-X', institutionId: 'INST-X', occupationCode, level: '4', trainingKind: 'certificate', sessions: [] },
    attendedMinutes: 0,
    totalMinutes: 0,
    assessmentPassed: true,
    certificateNo,
    completedAt: Date.now(),
    checkInRateThresholdPct: 60,
    policyVersion: 'SX-2022-11/v1',
    timeZone: ZONE,
  };
  const result = await acts.settleVoucher(input);
  return { person, voucherNo, result, input };
}

const year = () => localYear(Date.now(), ZONE);

describe('R4.5 clawback', () => {
  test('R4.5: HR of the paying district claws back a settled voucher: negative ledger entry linked to the disbursement, once; a quality strike on the institution; outstanding until recovered', async () => {
    const hr = await keyFor(db, 'hr', { district: '330602' });
    const hrOther = await keyFor(db, 'hr', { district: '330683' });
    // A directed voucher through the API: the issuing district (330602) pays the institution.
    const occ = uniqueOccupation();
    const instId = await makeInstitution(db);
    const inst = await keyFor(db, 'institution', { institutionId: instId });
    const cls = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) + 7 * DAY, occupationCode: occ, sessions: 5 });
    await makeCatalogueEntry(db, { occupationCode: occ, level: cls.level, amountFen: 77_700, fundingSource: 'employment_subsidy' });
    const person = await makePerson(db, testPii);
    const holder = await keyFor(db, 'holder', { personRef: person.personRef });
    const issued = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode: occ });
    expect(issued.status).toBe(201);
    const voucherNo = issued.body.voucherNo as string;
    await claimVoucher(app, voucherNo, person, holder);
    const act = await request(app).post(`/v1/vouchers/${voucherNo}/activate`).set(bearer(holder)).send({});
    expect({ s: act.status, code: act.body.code, detail: act.body.detail, st: act.body.status }).toEqual({ s: 200, st: 'activated' });
    expect((await request(app).post(`/v1/vouchers/${voucherNo}/enrol`).set(bearer(inst)).send({ classId: cls.classId, review: { passed: true } })).status).toBe(200);
    for (const s of cls.sessionIds) await request(app).post(`/v1/vouchers/${voucherNo}/check-ins`).set(bearer(inst)).send({ sessionId: s });
    // Before settlement: nothing to claw back.
    expect((await request(app).post(`/v1/vouchers/${voucherNo}/clawback`).set(bearer(hr)).send({ reason: 'x' })).status).toBe(404);
    await request(app).post(`/v1/vouchers/${voucherNo}/complete`).set(bearer(inst)).send({ assessmentPassed: true });
    const result = await env.client.workflow.getHandle(voucherWorkflowId(voucherNo)).result();
    expect(result.status).toBe('settled');
    // R3.12: no money in 330602's employment-subsidy budget (none is ever topped up here): it waits.
    expect(result.settlement).toMatchObject({ outcome: 'approved', amountFen: 77_700, budgetStatus: 'waiting_budget' });
    const view = await request(app).get(`/v1/vouchers/${voucherNo}`).set(bearer(hr));
    expect(view.body.settlement.budgetStatus).toBe('waiting_budget');

    expect((await request(app).post(`/v1/vouchers/${voucherNo}/clawback`).set(bearer(hrOther)).send({ reason: 'fake training' })).status).toBe(404);
    // R4.4: with Temporal unreachable the institution's strike cannot be counted, so the clawback is
    // refused whole (503): no ledger entry, no strike row. A real client with nothing listening, no retries.
    const down = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', interceptors: [] }) });
    try {
      const refused = await request(testApp(db, down, taskQueue)).post(`/v1/vouchers/${voucherNo}/clawback`).set(bearer(hr)).send({ reason: 'fake training' });
      expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 503, code: 'TEMPORAL_UNAVAILABLE' });
      expect({ clawbacks: await db('clawbacks').where({ voucher_no: voucherNo }), strikes: await db('institution_strikes').where({ institution_id: instId }) }).toEqual({ clawbacks: [], strikes: [] });
    } finally {
      await down.connection.close();
    }
    const cb = await request(app).post(`/v1/vouchers/${voucherNo}/clawback`).set(bearer(hr)).send({ reason: 'fake training: roster photos reused' });
    expect(cb.status).toBe(201);
    const disb = await db('disbursements').where({ voucher_no: voucherNo }).first();
    expect(cb.body).toMatchObject({ voucherNo, amountFen: -77_700, outstandingFen: 77_700, disbursementId: Number(disb.id), institutionId: instId, recoveredAt: null });
    const again = await request(app).post(`/v1/vouchers/${voucherNo}/clawback`).set(bearer(hr)).send({ reason: 'again' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CLAWBACK_EXISTS');
    expect(await db('clawbacks').where({ voucher_no: voucherNo })).toHaveLength(1);
    // The ledger: original + clawback nets to zero.
    const net = Number(disb.amount_fen) + Number((await db('clawbacks').where({ voucher_no: voucherNo }).first()).amount_fen);
    expect(net).toBe(0);
    // The institution is held liable: one quality strike, recorded and counted by its workflow.
    const strike = await db('institution_strikes').where({ id: `clawback-${voucherNo}` }).first();
    expect(strike).toMatchObject({ institution_id: instId, kind: 'quality' });
    const handle = env.client.workflow.getHandle(institutionWorkflowId(instId));
    let counted = 0;
    let lastError: unknown;
    for (let i = 0; i < 50 && counted === 0; i++) {
      // The strike's signal may have just started the institution workflow: a query before its first
      // workflow task is done can fail; ask again rather than fail the test on that race.
      const st = await handle.query(institutionStateQuery).catch((e: unknown) => {
        lastError = e;
        return undefined;
      });
      counted = st ? st.strikes.filter((s) => s.strikeId === `clawback-${voucherNo}`).length : 0;
      if (counted === 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (counted === 0 && lastError) throw lastError;
    expect(counted).toBe(1);
    // A clawed-back row is never released from the budget queue nor put into a batch.
    const top = await request(app).post(`/v1/budgets/330602/employment_subsidy/${year()}/top-up`).set(bearer(await keyFor(db, 'finance'))).send({ amountFen: 77_700 });
    expect(top.body.released).not.toContain(voucherNo);
    expect((await db('disbursements').where({ voucher_no: voucherNo }).first()).status).toBe('waiting_budget');
    await db('disbursements').where({ voucher_no: voucherNo }).update({ status: 'approved' }); // even if it were payable
    await runBatch('2030-03-01');
    expect(await db('batch_lines').where({ voucher_no: voucherNo })).toHaveLength(0);

    const list = await request(app).get('/v1/clawbacks').set(bearer(hr));
    expect(list.body.items.find((c: { voucherNo: string }) => c.voucherNo === voucherNo).outstandingFen).toBe(77_700);
    const rec = await request(app).post(`/v1/vouchers/${voucherNo}/clawback/recovered`).set(bearer(hr)).send({});
    expect(rec.status).toBe(200);
    expect(rec.body.outstandingFen).toBe(0);
    expect((await request(app).post(`/v1/vouchers/${voucherNo}/clawback/recovered`).set(bearer(hr)).send({})).status).toBe(409);
  });
});

describe('R3.11 subsidy catalogue', () => {
  test('R3.11: HR and finance publish entries; the public catalogue lists them in integer fen as JSON and CSV without a key', async () => {
    const hr = await keyFor(db, 'hr', { district: '330602' });
    const finance = await keyFor(db, 'finance');
    const occ = uniqueOccupation();
    const res = await request(app).post('/v1/catalogue').set(bearer(hr)).send({ occupationCode: occ, level: '4', trainingKind: 'certificate', amountFen: 150_050, fundingSource: 'skills_upgrading_account', validFrom: '2025-01-01', validTo: '2025-12-31' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ occupationCode: occ, amountFen: 150_050, validFrom: '2025-01-01', validTo: '2025-12-31' });
    // The next year's standard, published by (city-wide) finance.
    const next = await request(app).post('/v1/catalogue').set(bearer(finance)).send({ occupationCode: occ, level: '4', trainingKind: 'certificate', amountFen: 160_000, fundingSource: 'skills_upgrading_account', validFrom: '2026-01-01' });
    expect(next.status).toBe(201);
    const json = await request(app).get('/v1/public/catalogue');
    expect(json.status).toBe(200);
    const mine = json.body.items.filter((i: { occupationCode: string }) => i.occupationCode === occ);
    expect(mine.map((i: { amountFen: number }) => i.amountFen)).toEqual([150_050, 160_000]);
    expect(Number.isInteger(mine[0].amountFen)).toBe(true);
    const on = await request(app).get('/v1/public/catalogue').query({ on: '2025-06-01' });
    expect(on.body.items.filter((i: { occupationCode: string }) => i.occupationCode === occ)).toHaveLength(1);
    const csv = await request(app).get('/v1/public/catalogue').query({ format: 'csv' });
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.text.split('\r\n');
    expect(lines[0]).toBe('id,occupationCode,level,trainingKind,amountFen,fundingSource,validFrom,validTo');
    expect(lines.some((l) => l.includes(`${occ},4,certificate,150050,skills_upgrading_account,2025-01-01,2025-12-31`))).toBe(true);
    expect(lines.some((l) => l.includes(`${occ},4,certificate,160000,skills_upgrading_account,2026-01-01,`))).toBe(true);
  });

  test('R3.11: overlapping dates for the same occupation, level and kind are refused (409 CATALOGUE_OVERLAP) by the database; wrong role 403; nothing written', async () => {
    const hr = await keyFor(db, 'hr', { district: '330603' });
    const occ = uniqueOccupation();
    const base = { occupationCode: occ, level: '3', trainingKind: 'certificate', amountFen: 100_000, fundingSource: 'employment_subsidy' };
    expect((await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, validFrom: '2026-01-01', validTo: '2026-06-30' })).status).toBe(201);
    const overlap = await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, validFrom: '2026-06-30' });
    expect(overlap.status).toBe(409);
    expect(overlap.body).toMatchObject({ code: 'CATALOGUE_OVERLAP', rule: 'R3.11' });
    const openEnded = await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, validFrom: '2025-01-01' });
    expect(openEnded.status).toBe(409);
    // Another level, and adjacent dates, are fine.
    expect((await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, level: '2', validFrom: '2026-03-01' })).status).toBe(201);
    expect((await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, validFrom: '2026-07-01' })).status).toBe(201);
    // Even bypassing the API, the database refuses an overlap.
    await expect(db('subsidy_catalogue').insert({ occupation_code: occ, level: '3', training_kind: 'certificate', amount_fen: 1, funding_source: 'employment_subsidy', valid_from: '2026-02-01', valid_to: '2026-02-02' })).rejects.toMatchObject({ code: '23P01' });
    const assessor = await keyFor(db, 'assessor');
    expect((await request(app).post('/v1/catalogue').set(bearer(assessor)).send({ ...base, level: '9', validFrom: '2026-01-01' })).status).toBe(403);
    const bad = await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, level: '9', amountFen: 10.5, validFrom: '2026-01-01' });
    expect(bad.status).toBe(400);
    const backwards = await request(app).post('/v1/catalogue').set(bearer(hr)).send({ ...base, level: '9', validFrom: '2026-01-02', validTo: '2026-01-01' });
    expect(backwards.status).toBe(400);
    expect(await db('subsidy_catalogue').where({ occupation_code: occ })).toHaveLength(3);
  });
});

describe('R3.13 certificate registry', () => {
  test('R3.13: an assessor registers a certificate by person_ref (no ID number stored); a duplicate number is 409; other roles 403', async () => {
    const assessor = await keyFor(db, 'assessor');
    const person = await makePerson(db, testPii);
    const certificateNo = uid('CERT');
    const body = { certificateNo, idNumber: person.idNumber, occupationCode: '4-01-01', level: '4', issuedOn: '2026-03-01' };
    const res = await request(app).post('/v1/certificates').set(bearer(assessor)).send(body);
    expect(res.status).toBe(201);
    expect(res.body.personRef).toBe(person.personRef);
    expect(JSON.stringify(res.body)).not.toContain(person.idNumber);
    const row = await db('certificates').where({ certificate_no: certificateNo }).first();
    expect(row).toMatchObject({ person_ref: person.personRef, occupation_code: '4-01-01', level: '4' });
    expect(JSON.stringify(row)).not.toContain(person.idNumber);
    const dup = await request(app).post('/v1/certificates').set(bearer(assessor)).send({ ...body, level: '3' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('CERTIFICATE_EXISTS');
    expect((await db('certificates').where({ certificate_no: certificateNo }).first()).level).toBe('4');
    const hr = await keyFor(db, 'hr', { district: '330602' });
    expect((await request(app).post('/v1/certificates').set(bearer(hr)).send({ ...body, certificateNo: uid('CERT') })).status).toBe(403);
    expect((await request(app).post('/v1/certificates').set(bearer(assessor)).send({ ...body, certificateNo: uid('CERT'), idNumber: '330602199001010012' })).status).toBe(400);
  });
});

describe('R3.12 budgets', () => {
  test('R3.12: lists are cursor-paginated: budgets page by page in key order, each once, the last page without a cursor; a forged cursor is 400', async () => {
    const finance = await keyFor(db, 'finance', { district: '330624' });
    const years = [2091, 2092, 2093, 2094];
    for (const y of years) {
      expect((await request(app).post(`/v1/budgets/330624/${FUND}/${y}/top-up`).set(bearer(finance)).send({ amountFen: 1_000 + y })).status).toBe(200);
    }
    const seen: { fundingSource: string; year: number; totalFen: number }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: request.Response = await request(app).get('/v1/budgets').query({ limit: 1, ...(cursor ? { cursor } : {}) }).set(bearer(finance));
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 50);
    const mine = seen.filter((b) => b.fundingSource === FUND && years.includes(b.year));
    expect(mine.map((b) => [b.year, b.totalFen])).toEqual(years.map((y) => [y, 1_000 + y]));
    expect(new Set(seen.map((b) => `${b.fundingSource}/${b.year}`)).size).toBe(seen.length);
    expect(cursor).toBeNull();
    const forged = await request(app).get('/v1/budgets').query({ cursor: Buffer.from('["x"]').toString('base64url') }).set(bearer(finance));
    expect({ status: forged.status, code: forged.body.code }).toEqual({ status: 400, code: 'INVALID_CURSOR' });
  });

  test('R3.12: settlement reserves atomically; when short the row waits in the queue and the voucher still settles; a top-up releases waiting rows in order while the budget suffices', async () => {
    const district = '330683';
    const financeCity = await keyFor(db, 'finance');
    const financeOther = await keyFor(db, 'finance', { district: '330602' });
    const finance = await keyFor(db, 'finance', { district });
    // 1000.00 yuan in the budget.
    const top = await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(financeCity)).send({ amountFen: 100_000 });
    expect(top.status).toBe(200);
    const startReserved = top.body.reservedFen as number;
    const startLeft = top.body.leftFen as number;
    expect(startLeft).toBeGreaterThanOrEqual(100_000);
    // Use up exactly what is left except 600.00 yuan, through a settlement.
    const filler = startLeft - 60_000;
    if (filler > 0) expect((await settleGeneral(district, filler)).result.budgetStatus).toBe('reserved');
    const a = await settleGeneral(district, 50_000); // fits: 100.00 left
    expect(a.result).toMatchObject({ outcome: 'approved', payerDistrict: district, budgetStatus: 'reserved' });
    const b = await settleGeneral(district, 30_000); // short
    const c = await settleGeneral(district, 5_000); // fits in what is left: reserved at once
    const d = await settleGeneral(district, 20_000); // short
    expect(b.result).toMatchObject({ outcome: 'approved', budgetStatus: 'waiting_budget' });
    expect(c.result.budgetStatus).toBe('reserved');
    expect(d.result.budgetStatus).toBe('waiting_budget');
    // A retry of the settlement answers the same.
    expect((await acts.settleVoucher(b.input)).budgetStatus).toBe('waiting_budget');
    const budget = await db('budgets').where({ district, funding_source: FUND, year: year() }).first();
    expect(Number(budget.total_fen) - Number(budget.reserved_fen)).toBe(5_000);
    expect(Number(budget.reserved_fen)).toBe(startReserved + Math.max(filler, 0) + 55_000);
    expect((await db('disbursements').where({ voucher_no: b.voucherNo }).first()).status).toBe('waiting_budget');

    const queue = await request(app).get('/v1/budget-queue').query({ district }).set(bearer(finance));
    expect(queue.status).toBe(200);
    const mine = queue.body.items.filter((x: { voucherNo: string }) => [b.voucherNo, d.voucherNo].includes(x.voucherNo));
    expect(mine.map((x: { voucherNo: string }) => x.voucherNo)).toEqual([b.voucherNo, d.voucherNo]);
    expect((await request(app).get('/v1/budget-queue').query({ district }).set(bearer(financeOther))).body.items.some((x: { voucherNo: string }) => x.voucherNo === b.voucherNo)).toBe(false);

    // Another district's finance cannot top up (404), and it changes nothing.
    const out = await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(financeOther)).send({ amountFen: 1_000_000 });
    expect(out.status).toBe(404);
    const hr = await keyFor(db, 'hr', { district });
    expect((await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(hr)).send({ amountFen: 1 })).status).toBe(403);
    expect((await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(finance)).send({ amountFen: 0 })).status).toBe(400);

    // Top up 250.00 (300.00 left): b (300.00) is released; d (200.00) still waits: strictly in order.
    const t2 = await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(finance)).send({ amountFen: 25_000 });
    expect(t2.status).toBe(200);
    expect(t2.body.released).toEqual([b.voucherNo]);
    expect(t2.body.leftFen).toBe(0);
    expect((await db('disbursements').where({ voucher_no: b.voucherNo }).first()).status).toBe('approved');
    expect((await db('disbursements').where({ voucher_no: d.voucherNo }).first()).status).toBe('waiting_budget');
    const t3 = await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(finance)).send({ amountFen: 20_000 });
    expect(t3.body.released).toEqual([d.voucherNo]);
    const after = await db('budgets').where({ district, funding_source: FUND, year: year() }).first();
    expect(Number(after.reserved_fen)).toBeLessThanOrEqual(Number(after.total_fen));
    // The database itself refuses reserved > total.
    await expect(db('budgets').where({ district, funding_source: FUND, year: year() }).update({ reserved_fen: db.raw('total_fen + 1') })).rejects.toMatchObject({ code: '23514' });
  });

  test('R3.12: concurrent settlements never over-reserve a budget', async () => {
    const district = '330604';
    const fund = 'employment_subsidy';
    const finance = await keyFor(db, 'finance');
    const y = year();
    const before = await db('budgets').where({ district, funding_source: fund, year: y }).first();
    const left0 = before ? Number(before.total_fen) - Number(before.reserved_fen) : 0;
    await request(app).post(`/v1/budgets/${district}/${fund}/${y}/top-up`).set(bearer(finance)).send({ amountFen: 30_000 });
    const rs = await Promise.all([1, 2, 3, 4, 5].map(() => settleGeneral(district, 10_000, { fund })));
    const reserved = rs.filter((r) => r.result.budgetStatus === 'reserved').length;
    // 300.00 plus whatever was left: at most floor(left / 100.00) reservations succeed.
    expect(reserved).toBe(Math.min(5, Math.floor((left0 + 30_000) / 10_000)));
    const b = await db('budgets').where({ district, funding_source: fund, year: y }).first();
    expect(Number(b.reserved_fen)).toBeLessThanOrEqual(Number(b.total_fen));
  });
});

async function runBatch(date: string) {
  return env.client.workflow.execute(settlementBatchWorkflow, { workflowId: `${settlementBatchWorkflowId(date)}-${uid('')}`, taskQueue, args: [{ date }] });
}

async function xlsxRows(buf: Buffer): Promise<string[][]> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(buf as never);
  const out: string[][] = [];
  wb.worksheets[0]!.eachRow((row) => {
    out.push((row.values as unknown[]).slice(1).map((v) => (v === null || v === undefined ? '' : String(v))));
  });
  return out;
}

describe('R3.13 settlement batches', () => {
  test('R3.13: a batch gathers approved unbatched rows per district and source; CSV and XLSX tables with header, masked IDs and accounts, yuan from fen, totals equal to the rows, stored SHA-256; a rerun produces nothing new', async () => {
    const district = '330681';
    const finance = await keyFor(db, 'finance', { district });
    const hr = await keyFor(db, 'hr', { district });
    const hrOther = await keyFor(db, 'hr', { district: '330602' });
    await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(finance)).send({ amountFen: 10_000_000 });
    const s1 = await settleGeneral(district, 123_456);
    const s2 = await settleGeneral(district, 100_001);
    const s3 = await settleGeneral(district, 99);
    const noAccount = await makePerson(db, testPii, { uiDistrict: district });
    await db('persons').where({ person_ref: noAccount.personRef }).update({ bank_account_enc: null });
    const s4 = await settleGeneral(district, 5_000, { person: noAccount });
    const date = '2030-01-02';
    const r1 = await runBatch(date);
    const id = `B-${district}-${FUND}-20300102`;
    expect(r1.created).toContain(id);
    const batch = await db('settlement_batches').where({ id }).first();
    const lines = await db('batch_lines').where({ batch_id: id }).orderBy('line_no');
    const mine = [s1, s2, s3].map((s) => s.voucherNo);
    expect(lines.map((l) => l.voucher_no)).toEqual(expect.arrayContaining(mine));
    expect(lines.map((l) => l.voucher_no)).not.toContain(s4.voucherNo); // no account: waits
    // The money total of a batch always equals the sum of its rows.
    expect(Number(batch.total_fen)).toBe(lines.reduce((s, l) => s + Number(l.amount_fen), 0));
    expect(batch.line_count).toBe(lines.length);
    expect(batch.status).toBe('prepared');
    for (const v of mine) expect((await db('disbursements').where({ voucher_no: v }).first())).toMatchObject({ status: 'batched', batch_id: id });

    // Files: finance sees accounts in full, HR masked; the stored hash is the file's hash.
    const csvFin = await request(app).get(`/v1/settlement-batches/${id}/table.csv`).set(bearer(finance)).buffer(true);
    expect(csvFin.status).toBe(200);
    const text = csvFin.text;
    expect(createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex')).toBe(csvFin.headers['x-content-sha256']);
    const rows = text.trim().split('\r\n');
    expect(rows.slice(0, 5)).toEqual([`district,${district}`, `batch_number,${id}`, 'date,2030-01-02', `funding_source,${FUND}`, 'payment_route,agency_expenditure_account']);
    expect(rows[6]).toBe('line,payee_type,payee_id,name,account,amount_yuan,voucher_no');
    const l1 = rows.find((r) => r.endsWith(s1.voucherNo))!;
    expect(l1).toContain(`**************${s1.person.idNumber.slice(-4)}`);
    expect(l1).not.toContain(s1.person.idNumber);
    expect(l1).toContain(s1.person.name);
    expect(l1).toContain(`,${s1.person.bankAccount},1234.56,`);
    expect(rows.find((r) => r.endsWith(s2.voucherNo))).toContain(',1000.01,');
    expect(rows.find((r) => r.endsWith(s3.voucherNo))).toContain(',0.99,');
    expect(rows[rows.length - 1]).toBe(`total,,,,${lines.length} lines,${fenToYuan(batch.total_fen)},`);
    const csvHr = await request(app).get(`/v1/settlement-batches/${id}/table.csv`).set(bearer(hr)).buffer(true);
    expect(csvHr.status).toBe(200);
    expect(csvHr.text).not.toContain(s1.person.bankAccount);
    expect(csvHr.text).toContain(`${'*'.repeat(s1.person.bankAccount.length - 4)}${s1.person.bankAccount.slice(-4)}`);
    expect((await request(app).get(`/v1/settlement-batches/${id}/table.csv`).set(bearer(hrOther))).status).toBe(404);

    const xlsx = await request(app).get(`/v1/settlement-batches/${id}/table.xlsx`).set(bearer(finance)).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(xlsx.status).toBe(200);
    const xbuf = xlsx.body as Buffer;
    expect(createHash('sha256').update(xbuf).digest('hex')).toBe(xlsx.headers['x-content-sha256']);
    const xr = await xlsxRows(xbuf);
    expect(xr[1]).toEqual(['batch_number', id]);
    expect(xr.find((r) => r[6] === s1.voucherNo)?.[5]).toBe('1234.56');
    expect(xr[xr.length - 1]![5]).toBe(fenToYuan(batch.total_fen));
    const files = await db('batch_files').where({ batch_id: id });
    expect(files).toHaveLength(4);
    expect(JSON.stringify(files.map((f) => Buffer.from(f.content_enc).toString('utf8')))).not.toContain(s1.person.bankAccount);

    // Rerun the same day: same batches, nothing new, same files and hashes.
    const hashes = files.map((f) => `${f.format}.${f.variant}:${f.sha256}`).sort();
    const r2 = await runBatch(date);
    expect(r2.created).toEqual([]);
    expect(r2.batchIds).toContain(id);
    expect((await db('batch_files').where({ batch_id: id })).map((f) => `${f.format}.${f.variant}:${f.sha256}`).sort()).toEqual(hashes);
    // Re-rendering from scratch gives the same bytes (deterministic CSV and XLSX).
    await db('batch_files').where({ batch_id: id }).del();
    const r3 = await runBatch(date);
    expect(r3.files[id]!.map((f) => `${f.format}.${f.variant}:${f.sha256}`).sort()).toEqual(hashes);
    expect(await db('batch_lines').where({ batch_id: id })).toHaveLength(lines.length);
  });

  test('R3.13: HR of the district stamps (who, when) and sends; finance reconciles line by line; twice or another district refused; a failed line returns to a later batch after an audited account correction', async () => {
    const district = '330681';
    const finance = await keyFor(db, 'finance', { district });
    const financeOther = await keyFor(db, 'finance', { district: '330602' });
    const hr = await keyFor(db, 'hr', { district });
    const hrOther = await keyFor(db, 'hr', { district: '330602' });
    await request(app).post(`/v1/budgets/${district}/${FUND}/${year()}/top-up`).set(bearer(finance)).send({ amountFen: 1_000_000 });
    const s1 = await settleGeneral(district, 40_000);
    const s2 = await settleGeneral(district, 60_000);
    const date = '2030-02-03';
    await runBatch(date);
    const id = `B-${district}-${FUND}-20300203`;
    const lines = await db('batch_lines').where({ batch_id: id }).orderBy('line_no');
    const line1 = lines.find((l) => l.voucher_no === s1.voucherNo)!.line_no;
    const line2 = lines.find((l) => l.voucher_no === s2.voucherNo)!.line_no;

    // Finance cannot reconcile before HR stamps and sends.
    const early = await request(app).post(`/v1/settlement-batches/${id}/reconciliation`).set(bearer(finance)).set('content-type', 'text/csv').send(`line,result,reason\n${line1},paid,\n`);
    expect(early.status).toBe(409);
    expect((await request(app).post(`/v1/settlement-batches/${id}/approve`).set(bearer(hrOther)).send({})).status).toBe(404);
    expect((await request(app).post(`/v1/settlement-batches/${id}/approve`).set(bearer(finance)).send({})).status).toBe(403);
    expect((await request(app).post(`/v1/settlement-batches/${id}/send`).set(bearer(hr)).send({})).status).toBe(409);
    const ap = await request(app).post(`/v1/settlement-batches/${id}/approve`).set(bearer(hr)).send({});
    expect(ap.status).toBe(200);
    expect(ap.body.status).toBe('approved');
    expect(ap.body.approvedBy).toMatch(/^hr-/);
    expect(ap.body.approvedAt).toBeTruthy();
    expect((await request(app).post(`/v1/settlement-batches/${id}/approve`).set(bearer(hr)).send({})).status).toBe(409);
    expect((await request(app).post(`/v1/settlement-batches/${id}/send`).set(bearer(hr)).send({})).body.status).toBe('sent');

    // Another district's finance: the batch does not exist for them.
    const foreign = await request(app).post(`/v1/settlement-batches/${id}/reconciliation`).set(bearer(financeOther)).set('content-type', 'text/csv').send(`line,result,reason\n${line1},paid,\n`);
    expect(foreign.status).toBe(404);
    // A bad line refuses the whole upload and changes nothing.
    const bad = await request(app).post(`/v1/settlement-batches/${id}/reconciliation`).set(bearer(finance)).set('content-type', 'text/csv').send(`line,result,reason\n${line1},paid,\n9999,paid,\n`);
    expect(bad.status).toBe(422);
    expect((await db('batch_lines').where({ batch_id: id, line_no: line1 }).first()).result).toBeNull();

    const others = lines.filter((l) => l.line_no !== line1 && l.line_no !== line2).map((l) => `${l.line_no},paid,`);
    const rec = await request(app)
      .post(`/v1/settlement-batches/${id}/reconciliation`)
      .set(bearer(finance))
      .set('content-type', 'text/csv')
      .send(['line,result,reason', `${line1},paid,`, `${line2},failed,account closed`, ...others].join('\n') + '\n');
    expect(rec.status).toBe(200);
    expect(rec.body).toMatchObject({ failed: 1, paid: lines.length - 1, open: 0, status: 'reconciled' });
    expect((await db('disbursements').where({ voucher_no: s1.voucherNo }).first()).status).toBe('paid');
    expect((await db('disbursements').where({ voucher_no: s2.voucherNo }).first()).status).toBe('failed');
    const twice = await request(app).post(`/v1/settlement-batches/${id}/reconciliation`).set(bearer(finance)).set('content-type', 'text/csv').send(`line,result,reason\n${line1},failed,x\n`);
    expect(twice.status).toBe(409);
    expect((await db('batch_lines').where({ batch_id: id, line_no: line1 }).first()).result).toBe('paid');

    // A later batch without a correction does not pick the failed line up.
    await runBatch('2030-02-04');
    expect((await db('disbursements').where({ voucher_no: s2.voucherNo }).first()).status).toBe('failed');

    // HR corrects the account: audited with masked values; the failed row returns to the next batch.
    const newAccount = '6217000011112222';
    expect((await request(app).put(`/v1/persons/${s2.person.personRef}/bank-account`).set(bearer(hrOther)).send({ account: newAccount })).status).toBe(404);
    const fix = await request(app).put(`/v1/persons/${s2.person.personRef}/bank-account`).set(bearer(hr)).send({ account: newAccount });
    expect(fix.status).toBe(200);
    expect(fix.body).toMatchObject({ oldAccount: `${'*'.repeat(s2.person.bankAccount.length - 4)}${s2.person.bankAccount.slice(-4)}`, newAccount: '************2222', requeued: [s2.voucherNo] });
    const audit = await db('account_changes').where({ person_ref: s2.person.personRef });
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(newAccount);
    expect(audit[0].principal_id).toMatch(/^hr-/);
    await runBatch('2030-02-05');
    const later = `B-${district}-${FUND}-20300205`;
    const again = await db('batch_lines').where({ batch_id: later, voucher_no: s2.voucherNo }).first();
    expect(again).toBeTruthy();
    expect(testPii.decrypt(again.account_enc)).toBe(newAccount);
    const laterBatch = await db('settlement_batches').where({ id: later }).first();
    const laterLines = await db('batch_lines').where({ batch_id: later });
    expect(Number(laterBatch.total_fen)).toBe(laterLines.reduce((s, l) => s + Number(l.amount_fen), 0));
  });

  test('R3.13: finance runs the batch on demand as SettlementBatch:<date>; a second run the same day creates nothing', async () => {
    const finance = await keyFor(db, 'finance');
    const hr = await keyFor(db, 'hr', { district: '330681' });
    expect((await request(app).post('/v1/settlement-batches/run').set(bearer(hr)).send({})).status).toBe(403);
    const r1 = await request(app).post('/v1/settlement-batches/run').set(bearer(finance)).send({});
    expect(r1.status).toBe(200);
    const today = localDate(Date.now(), ZONE);
    expect(r1.body.date).toBe(today);
    const r2 = await request(app).post('/v1/settlement-batches/run').set(bearer(finance)).send({});
    expect(r2.body.created).toEqual([]);
    expect(r2.body.batchIds).toEqual(r1.body.batchIds);
    const desc = await env.client.workflow.getHandle(settlementBatchWorkflowId(today)).describe();
    expect(desc.type).toBe('settlementBatchWorkflow');
    for (const id of r1.body.batchIds as string[]) {
      const b = await db('settlement_batches').where({ id }).first();
      const ls = await db('batch_lines').where({ batch_id: id });
      expect(Number(b.total_fen)).toBe(ls.reduce((s, l) => s + Number(l.amount_fen), 0));
    }
  });

  test('R3.13: finance of a district runs the batch of its own district only (SettlementBatch:<date>:<district>); another district\'s approved rows wait for their own or the city-wide run', async () => {
    const [mine, other] = ['330683', '330624'];
    const financeCity = await keyFor(db, 'finance');
    const financeMine = await keyFor(db, 'finance', { district: mine });
    for (const d of [mine, other]) {
      expect((await request(app).post(`/v1/budgets/${d}/${FUND}/${year()}/top-up`).set(bearer(financeCity)).send({ amountFen: 1_000_000 })).status).toBe(200);
    }
    const a = await settleGeneral(mine, 12_300);
    const b = await settleGeneral(other, 45_600);
    expect([a.result.budgetStatus, b.result.budgetStatus]).toEqual(['reserved', 'reserved']);
    // A day of its own, so that no other test's run has formed this day's batches already.
    const at = Date.parse('2034-06-13T02:00:00Z');
    const dayApp = testApp(db, env.client, taskQueue, () => at);
    const day = localDate(at, ZONE);
    const mineBatch = batchNumber(mine, FUND, day);
    const otherBatch = batchNumber(other, FUND, day);

    const r1 = await request(dayApp).post('/v1/settlement-batches/run').set(bearer(financeMine)).send({});
    expect(r1.status).toBe(200);
    expect(r1.body.created).toContain(mineBatch);
    expect((r1.body.batchIds as string[]).every((id) => id.startsWith(`B-${mine}-`))).toBe(true);
    expect((await db('disbursements').where({ voucher_no: a.voucherNo }).first()).batch_id).toBe(mineBatch);
    expect((await db('disbursements').where({ voucher_no: b.voucherNo }).first()).status).toBe('approved');
    expect(await db('settlement_batches').where({ id: otherBatch }).first()).toBeUndefined();
    const run = env.client.workflow.getHandle(settlementBatchWorkflowId(day, mine));
    expect((await run.describe()).type).toBe('settlementBatchWorkflow');
    // Its result names its own district's batches and files only.
    const result = await run.result();
    expect(Object.keys(result.files).every((id) => id.startsWith(`B-${mine}-`))).toBe(true);

    // The district's second run the same day creates nothing; the city-wide run batches the other district.
    const r2 = await request(dayApp).post('/v1/settlement-batches/run').set(bearer(financeMine)).send({});
    expect(r2.body.created).toEqual([]);
    const r3 = await request(dayApp).post('/v1/settlement-batches/run').set(bearer(financeCity)).send({});
    expect(r3.status).toBe(200);
    expect(r3.body.batchIds).toEqual(expect.arrayContaining([mineBatch, otherBatch]));
    expect(r3.body.created).not.toContain(mineBatch);
    expect((await db('disbursements').where({ voucher_no: b.voucherNo }).first()).batch_id).toBe(otherBatch);
    expect((await db('disbursements').where({ voucher_no: a.voucherNo }).first()).batch_id).toBe(mineBatch);
  });
});

