/**
 * Time-skipping tests from activation through check-ins to settlement, for both voucher kinds, with
 * the real PostgreSQL ledger underneath.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/voucher-activities';
import { buildVoucherInput } from '../api/voucher-input';
import type { Db } from '../db/connection';
import { voucherWorkflowId, type VoucherType } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate, revokeSignal, stateQuery } from '../workflows/voucher/messages';
import { voucherWorkflow } from '../workflows/voucher/workflow';
import { testDb, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uid, uniqueOccupation, type ClassFixture, type PersonFixture } from './helpers/fixtures';

const DAY = 86_400_000;
let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let taskQueue: string;
let running: Promise<void>;
/** Settlement attempts that should fail once after the real activity committed (retry idempotency). */
const failOnceAfterCommit = new Set<string>();

beforeAll(async () => {
  env = await timeSkippingEnv();
  db = testDb();
  taskQueue = uniqueTaskQueue('settle');
  const real = createActivities({ db });
  worker = await testWorker(env, db, taskQueue, {
    ...real,
    async settleVoucher(i: Parameters<typeof real.settleVoucher>[0]) {
      const r = await real.settleVoucher(i);
      if (failOnceAfterCommit.delete(i.voucherNo)) throw new Error('injected: worker lost the reply after commit');
      return r;
    },
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

interface Setup {
  person: PersonFixture;
  cls: ClassFixture;
  handle: Awaited<ReturnType<typeof env.client.workflow.start<typeof voucherWorkflow>>>;
  voucherNo: string;
}

async function setup(type: VoucherType, o: { amountFen?: number; person?: Parameters<typeof makePerson>[2] } = {}): Promise<Setup> {
  const person = await makePerson(db, testPii, o.person);
  const institutionId = await makeInstitution(db);
  const occupationCode = uniqueOccupation();
  const now = await env.currentTimeMs();
  const cls = await makeClass(db, { institutionId, firstStart: now + 7 * DAY, sessions: 20, minutes: 90, occupationCode });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: o.amountFen ?? 180_000, fundingSource: type === 'directed' ? 'employment_subsidy' : 'skills_upgrading_account' });
  const input = await buildVoucherInput(db, {
    type,
    issuerDistrict: '330602',
    personRef: person.personRef,
    obtainedAt: now,
    ...(type === 'directed' ? { occupationCode } : {}),
  });
  const handle = await env.client.workflow.start(voucherWorkflow, { workflowId: voucherWorkflowId(input.voucherNo), taskQueue, args: [input] });
  await handle.executeUpdate(activateUpdate, { args: [{}] });
  const enrolled = await handle.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId, review: { passed: true } }] });
  expect(enrolled.status).toBe('in_training');
  return { person, cls, handle, voucherNo: input.voucherNo };
}

async function attend(h: Setup['handle'], sessionIds: string[], minutes = 90) {
  for (const sessionId of sessionIds) await h.signal(checkInSignal, { sessionId, verifiedMinutes: minutes, at: Date.now() });
}

describe('check-ins', () => {
  test('R3.10: duplicate check-in signals for one session are counted once', async () => {
    const s = await setup('directed');
    await attend(s.handle, ['S01', 'S01', 'S01', 'S02', 'S02']);
    const st = await s.handle.query(stateQuery);
    expect(st.attendedMinutes).toBe(180);
    expect(st.totalMinutes).toBe(20 * 90);
    expect(st.checkInRate).toBe(10);
    expect(st.sessions.filter((x) => x.verifiedMinutes > 0).map((x) => x.sessionId)).toEqual(['S01', 'S02']);
  });

  test('R3.10: a check-in for a session not in the plan counts nothing', async () => {
    const s = await setup('directed');
    await attend(s.handle, ['S99', 'nope']);
    expect((await s.handle.query(stateQuery)).attendedMinutes).toBe(0);
  });
});

describe('settlement', () => {
  test('R3.9 R3.10 R3.11 R3.12: directed voucher at exactly 60% with a passed assessment → institution paid by the issuing district, treasury route', async () => {
    const s = await setup('directed', { amountFen: 123_456 });
    await attend(s.handle, s.cls.sessionIds.slice(0, 12));
    await s.handle.signal(completeSignal, { assessmentPassed: true });
    const res = await s.handle.result();
    expect(res.status).toBe('settled');
    expect(res.checkInRate).toBe(60);
    expect(res.settlement).toMatchObject({ outcome: 'approved', amountFen: 123_456, payerDistrict: '330602', payeeType: 'institution', payeeRef: s.cls.institutionId, fundingSource: 'employment_subsidy', paymentRoute: 'treasury_centralised_payment' });
    const rows = await db('disbursements').where({ voucher_no: s.voucherNo });
    expect(rows).toHaveLength(1);
    expect(rows[0].amount_fen).toBe(123_456);
    const rm = await db('vouchers').where({ voucher_no: s.voucherNo }).first();
    expect(rm.status).toBe('settled');
  });

  test('R3.10: directed voucher at 55% → rejected at settlement with CHECK_IN_RATE_BELOW_THRESHOLD, no disbursement', async () => {
    const s = await setup('directed');
    await attend(s.handle, s.cls.sessionIds.slice(0, 11));
    await s.handle.signal(completeSignal, { assessmentPassed: true });
    const res = await s.handle.result();
    expect(res.status).toBe('rejected');
    expect(res.settlement).toMatchObject({ outcome: 'rejected', reason: 'CHECK_IN_RATE_BELOW_THRESHOLD', rule: 'R3.10' });
    expect(await db('disbursements').where({ voucher_no: s.voucherNo })).toHaveLength(0);
    const decision = await db('subsidy_decisions').where({ voucher_no: s.voucherNo }).first();
    expect(decision.inputs.attendedMinutes).toBe(11 * 90);
  });

  test('R3.10: directed voucher at 100% but assessment failed → rejected with ASSESSMENT_NOT_PASSED', async () => {
    const s = await setup('directed');
    await attend(s.handle, s.cls.sessionIds);
    await s.handle.signal(completeSignal, { assessmentPassed: false });
    const res = await s.handle.result();
    expect(res.settlement).toMatchObject({ outcome: 'rejected', reason: 'ASSESSMENT_NOT_PASSED' });
  });

  test('R3.8 R3.13: general voucher with a matching certificate → the person is paid by the first Shaoxing district in R3.8 order', async () => {
    // No UI place in Shaoxing, employment place 柯桥区: the employment place pays.
    const s = await setup('general', { amountFen: 200_000, person: { uiDistrict: '110105', employmentDistrict: '330603', householdDistrict: '330604' } });
    const certificateNo = uid('CERT');
    await db('certificates').insert({ certificate_no: certificateNo, person_ref: s.person.personRef, occupation_code: s.cls.occupationCode, level: s.cls.level, issued_on: '2026-01-01' });
    await s.handle.signal(completeSignal, { assessmentPassed: true, certificateNo });
    const res = await s.handle.result();
    expect(res.status).toBe('settled');
    expect(res.settlement).toMatchObject({ outcome: 'approved', amountFen: 200_000, payerDistrict: '330603', payeeType: 'person', payeeRef: s.person.personRef, paymentRoute: 'agency_expenditure_account' });
  });

  test('R3.8 R3.13: general voucher with a certificate of another person → rejected, nothing paid', async () => {
    const s = await setup('general');
    const other = await makePerson(db, testPii);
    const certificateNo = uid('CERT');
    await db('certificates').insert({ certificate_no: certificateNo, person_ref: other.personRef, occupation_code: s.cls.occupationCode, level: s.cls.level, issued_on: '2026-01-01' });
    await s.handle.signal(completeSignal, { assessmentPassed: true, certificateNo });
    const res = await s.handle.result();
    expect(res.settlement).toMatchObject({ outcome: 'rejected', reason: 'CERTIFICATE_OF_ANOTHER_PERSON' });
    expect(await db('disbursements').where({ voucher_no: s.voucherNo })).toHaveLength(0);
  });

  test('R3.8: general voucher whose person has no place in Shaoxing → rejected with NO_PAYING_DISTRICT_IN_SHAOXING', async () => {
    const s = await setup('general', { person: { uiDistrict: '110105' } });
    const certificateNo = uid('CERT');
    await db('certificates').insert({ certificate_no: certificateNo, person_ref: s.person.personRef, occupation_code: s.cls.occupationCode, level: s.cls.level, issued_on: '2026-01-01' });
    await s.handle.signal(completeSignal, { assessmentPassed: true, certificateNo });
    expect((await s.handle.result()).settlement).toMatchObject({ outcome: 'rejected', reason: 'NO_PAYING_DISTRICT_IN_SHAOXING', rule: 'R3.8' });
  });

  test('R3.9: a settlement activity retried after its commit writes one disbursement row', async () => {
    const s = await setup('directed');
    failOnceAfterCommit.add(s.voucherNo);
    await attend(s.handle, s.cls.sessionIds);
    await s.handle.signal(completeSignal, { assessmentPassed: true });
    const res = await s.handle.result();
    expect(failOnceAfterCommit.has(s.voucherNo)).toBe(false); // the failure was injected
    expect(res.status).toBe('settled');
    expect(await db('disbursements').where({ voucher_no: s.voucherNo })).toHaveLength(1);
  });

  test('R3.9: concurrent duplicate settlement calls write one decision and one disbursement row', async () => {
    const s = await setup('directed');
    await attend(s.handle, s.cls.sessionIds);
    const st = await s.handle.query(stateQuery);
    const acts = createActivities({ db });
    const input = {
      voucherNo: s.voucherNo, type: 'directed' as const, issuerDistrict: '330602', personRef: s.person.personRef,
      classPlan: st.classPlan!, attendedMinutes: st.attendedMinutes, totalMinutes: st.totalMinutes, assessmentPassed: true,
      completedAt: Date.now(), checkInRateThresholdPct: 60, policyVersion: st.policyVersion, timeZone: 'Asia/Shanghai',
    };
    const results = await Promise.all(Array.from({ length: 8 }, () => acts.settleVoucher(input)));
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(await db('disbursements').where({ voucher_no: s.voucherNo })).toHaveLength(1);
    expect(await db('subsidy_decisions').where({ voucher_no: s.voucherNo })).toHaveLength(1);
    await s.handle.signal(revokeSignal, { reason: 'test cleanup', by: 'test' });
  });
});

describe('catalogue', () => {
  test('R3.11: the catalogue entry in force on the completion date applies; an expired one does not', async () => {
    const s = await setup('directed', { amountFen: 100_000 });
    // The entry made by setup runs from 2020; end it yesterday and add today's standard.
    const today = new Date((await env.currentTimeMs()) + 8 * 3_600_000).toISOString().slice(0, 10);
    const yesterday = new Date((await env.currentTimeMs()) + 8 * 3_600_000 - DAY).toISOString().slice(0, 10);
    await db('subsidy_catalogue').where({ occupation_code: s.cls.occupationCode }).update({ valid_to: yesterday });
    await makeCatalogueEntry(db, { occupationCode: s.cls.occupationCode, level: s.cls.level, amountFen: 130_000, validFrom: today, fundingSource: 'employment_subsidy' });
    await attend(s.handle, s.cls.sessionIds);
    await s.handle.signal(completeSignal, { assessmentPassed: true });
    expect((await s.handle.result()).settlement).toMatchObject({ outcome: 'approved', amountFen: 130_000 });
  });

  test('R3.11: no catalogue entry for the occupation, level and kind → rejected with NO_CATALOGUE_ENTRY', async () => {
    const s = await setup('directed');
    await db('subsidy_catalogue').where({ occupation_code: s.cls.occupationCode }).del();
    await attend(s.handle, s.cls.sessionIds);
    await s.handle.signal(completeSignal, { assessmentPassed: true });
    expect((await s.handle.result()).settlement).toMatchObject({ outcome: 'rejected', reason: 'NO_CATALOGUE_ENTRY', rule: 'R3.11' });
    expect(await db('disbursements').where({ voucher_no: s.voucherNo })).toHaveLength(0);
  });
});

describe('revoke', () => {
  test('R3.3: a revoked voucher ends revoked and cannot be activated', async () => {
    const person = await makePerson(db, testPii);
    const input = await buildVoucherInput(db, { type: 'general', issuerDistrict: '330603', personRef: person.personRef, obtainedAt: await env.currentTimeMs() });
    const h = await env.client.workflow.start(voucherWorkflow, { workflowId: voucherWorkflowId(input.voucherNo), taskQueue, args: [input] });
    await h.signal(revokeSignal, { reason: 'issued in error', by: 'hr:330603' });
    const res = await h.result();
    expect(res.status).toBe('revoked');
    expect(res.endReason).toContain('issued in error');
    expect(await db('activation_quota').where({ person_ref: person.personRef })).toHaveLength(0);
  });
});
