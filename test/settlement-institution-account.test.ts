/**
 * Institution payees in settlement (R3.9, R3.10, R3.13) over the real API, PostgreSQL and a
 * time-skipping Temporal server, on a database of this file's own (batches gather every approved row
 * of a database, so other files' rows stay out of these batches and these out of theirs):
 * a directed voucher completed at exactly 60% check-in with the assessment passed waits for the
 * institution's bank account, then lands in a batch with the institution as payee; the account is set
 * by the institution itself and corrected by HR, every change audited with masked values; a failed
 * line returns to a later batch only after the correction; bad requests change nothing.
 */
import request from 'supertest';
import type { Express } from 'express';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { createAllActivities } from '../activities';
import { readBatchFile } from '../activities/settlement-activities';
import { fenToYuan, sha256 } from '../activities/settlement-files';
import { buildVoucherInput } from '../api/voucher-input';
import { type Db } from '../db/connection';
import { localYear } from '../policy/calendar';
import { settlementBatchWorkflow } from '../workflows/settlement/batch';
import { settlementBatchWorkflowId } from '../workflows/settlement/contract';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate } from '../workflows/voucher/messages';
import type { voucherWorkflow } from '../workflows/voucher/workflow';
import { bearer, keyFor, testApp } from './helpers/api';
import { ownDatabase, type OwnDatabase, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uid, uniqueOccupation, type ClassFixture } from './helpers/fixtures';

const ISSUER = '330602';
const FUND = 'ui_employment_promotion';
const AMOUNT = 88_800;
let own: OwnDatabase | undefined;
let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let app: Express;
let taskQueue: string;

beforeAll(async () => {
  own = await ownDatabase('instacct');
  db = own.db;
  env = await timeSkippingEnv();
  taskQueue = uniqueTaskQueue('instacct');
  worker = await testWorker(env, db, taskQueue, createAllActivities({ db, pii: testPii }));
  running = worker.run();
  app = testApp(db, env.client, taskQueue);
}, 180_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await own?.drop();
});

async function runBatch(date: string) {
  return env.client.workflow.execute(settlementBatchWorkflow, { workflowId: `${settlementBatchWorkflowId(date)}-${uid('')}`, taskQueue, args: [{ date }] });
}

/** A directed voucher of `cls`, issued by ISSUER, checked in at `attended` sessions, completed. */
async function directedVoucher(cls: ClassFixture, occupationCode: string, attended: number, assessmentPassed: boolean) {
  const person = await makePerson(db, testPii);
  // On the roster: the time-skipping server may move past the class's start while the Updates run (R4.2).
  await db('class_roster').insert({ class_id: cls.classId, person_ref: person.personRef });
  const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: ISSUER, personRef: person.personRef, occupationCode, obtainedAt: await env.currentTimeMs() });
  const h = await env.client.workflow.start<typeof voucherWorkflow>('voucherWorkflow', {
    workflowId: voucherWorkflowId(input.voucherNo),
    taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
  });
  expect((await h.executeUpdate(activateUpdate, { args: [{ channel: 'test' }] })).status).toBe('activated');
  expect((await h.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId: cls.institutionId, review: { passed: true } }] })).status).toBe('in_training');
  for (const sessionId of cls.sessionIds.slice(0, attended)) await h.signal(checkInSignal, { sessionId, verifiedMinutes: 90, at: await env.currentTimeMs() });
  await h.signal(completeSignal, { assessmentPassed });
  return { voucherNo: input.voucherNo, result: await h.result() };
}

async function csvOf(batchId: string, key: string): Promise<string[]> {
  const res = await request(app).get(`/v1/settlement-batches/${batchId}/table.csv`).set(bearer(key)).buffer(true);
  expect(res.status).toBe(200);
  return res.text.trim().split('\r\n');
}

async function batchOk(batchId: string) {
  const b = await db('settlement_batches').where({ id: batchId }).first();
  const lines = await db('batch_lines').where({ batch_id: batchId }).orderBy('line_no');
  // The money total of a batch always equals the sum of its lines; line numbers run 1..n.
  expect(Number(b.total_fen)).toBe(lines.reduce((s, l) => s + Number(l.amount_fen), 0));
  expect(b.line_count).toBe(lines.length);
  expect(lines.map((l) => l.line_no)).toEqual(lines.map((_, i) => i + 1));
  return { b, lines };
}

test('R3.9 R3.10 R3.13: a directed voucher at 60% check-in with the assessment passed is paid to the institution: it waits for a registered account, then one batch line with the institution as payee; account changes audited (masked); a failed line returns to a later batch only after the correction; bad requests change nothing', async () => {
  const occupationCode = uniqueOccupation();
  const instId = await makeInstitution(db, 'approved', '330603'); // supervised by its own district (R3.9); paid by the issuer
  const otherInstId = await makeInstitution(db);
  const cls = await makeClass(db, { institutionId: instId, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode, sessions: 5, minutes: 90 });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: AMOUNT, fundingSource: FUND });
  const year = localYear(await env.currentTimeMs(), 'Asia/Shanghai');
  for (const y of [year, year + 1]) await db('budgets').insert({ district: ISSUER, funding_source: FUND, year: y, total_fen: 100_000_000, reserved_fen: 0 });

  const inst = await keyFor(db, 'institution', { institutionId: instId });
  const otherInst = await keyFor(db, 'institution', { institutionId: otherInstId });
  const hrIssuer = await keyFor(db, 'hr', { district: ISSUER });
  const hrElsewhere = await keyFor(db, 'hr', { district: '330681' });
  const finance = await keyFor(db, 'finance', { district: ISSUER });
  const operator = await keyFor(db, 'operator');
  const holder = await keyFor(db, 'holder', { personRef: (await makePerson(db, testPii)).personRef });
  const assessor = await keyFor(db, 'assessor');

  // ---- R3.10: 3 of 5 sessions (exactly 60%) and passed → approved for the institution; 2 of 5 → refused
  const paid = await directedVoucher(cls, occupationCode, 3, true);
  expect(paid.result).toMatchObject({ status: 'settled', checkInRate: 60, settlement: { outcome: 'approved', amountFen: AMOUNT, payerDistrict: ISSUER, payeeType: 'institution', payeeRef: instId, fundingSource: FUND } });
  const refused = await directedVoucher(cls, occupationCode, 2, true);
  expect(refused.result.settlement).toMatchObject({ outcome: 'rejected', reason: 'CHECK_IN_RATE_BELOW_THRESHOLD', rule: 'R3.10' });
  expect(await db('disbursements').where({ voucher_no: refused.voucherNo })).toHaveLength(0);
  expect((await db('disbursements').where({ voucher_no: paid.voucherNo }).first()).status).toBe('approved');

  // ---- no registered account yet: the row waits, no batch --------------------------------------
  const r0 = await runBatch('2030-05-01');
  expect(r0.created).toEqual([]);
  expect(await db('batch_lines').where({ voucher_no: paid.voucherNo })).toHaveLength(0);
  expect((await db('disbursements').where({ voucher_no: paid.voucherNo }).first()).status).toBe('approved');

  // ---- bad requests: refused with a machine-readable answer, nothing changes --------------------
  const url = (id: string) => `/v1/institutions/${id}/bank-account`;
  const snapshot = async () => ({
    accounts: await db('institutions').whereIn('id', [instId, otherInstId]).orderBy('id').select('id', 'bank_account_enc'),
    changes: await db('account_changes').count<{ n: string }[]>({ n: '*' }),
    queue: await db('disbursements').orderBy('id').select('voucher_no', 'status', 'batch_id'),
  });
  const before = await snapshot();
  const unknown = await request(app).put(url('INSTNOSUCH0000')).set(bearer(hrIssuer)).send({ account: '6222000011112222' });
  expect({ status: unknown.status, code: unknown.body.code }).toEqual({ status: 404, code: 'INSTITUTION_NOT_FOUND' });
  const foreign = await request(app).put(url(instId)).set(bearer(otherInst)).send({ account: '6222000011112222' });
  expect({ status: foreign.status, code: foreign.body.code }).toEqual({ status: 404, code: 'INSTITUTION_NOT_FOUND' });
  for (const account of ['62220000abcd', '1234567', '1'.repeat(33), 6222000011112222]) {
    const bad = await request(app).put(url(instId)).set(bearer(inst)).send({ account });
    expect({ status: bad.status, code: bad.body.code }).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    expect(bad.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.stringMatching(/account$/) })]));
  }
  const extra = await request(app).put(url(instId)).set(bearer(inst)).send({ account: '6222000011112222', holder: 'x' });
  expect(extra.status).toBe(400);
  for (const key of [operator, finance, holder, assessor]) {
    expect((await request(app).put(url(instId)).set(bearer(key)).send({ account: '6222000011112222' })).status).toBe(403);
  }
  expect(await snapshot()).toEqual(before);

  // ---- the institution registers its own account: audited with masked values ------------------
  const first = '6222000011112222';
  const set = await request(app).put(url(instId)).set(bearer(inst)).send({ account: first });
  expect(set.status).toBe(200);
  expect(set.body).toMatchObject({ institutionId: instId, oldAccount: null, newAccount: '************2222', requeued: [] });
  expect(set.body.changedBy).toMatch(/^institution-/);
  expect(JSON.stringify(set.body)).not.toContain(first);
  const inRow = await db('institutions').where({ id: instId }).first();
  expect(inRow.bank_account_enc).not.toContain(first);
  expect(testPii.decrypt(inRow.bank_account_enc)).toBe(first);

  // ---- the next batch pays the institution ------------------------------------------------------
  const r1 = await runBatch('2030-05-02');
  const id1 = `B-${ISSUER}-${FUND}-20300502`;
  expect(r1.created).toEqual([id1]);
  const { b: b1, lines: l1 } = await batchOk(id1);
  expect(l1).toHaveLength(1);
  expect(l1[0]).toMatchObject({ voucher_no: paid.voucherNo, payee_type: 'institution', payee_ref: instId, payee_id_masked: instId, amount_fen: AMOUNT });
  expect(testPii.decrypt(l1[0].payee_name_enc)).toBe(`Institution ${instId}`);
  expect(Number(b1.total_fen)).toBe(AMOUNT);
  expect(await db('disbursements').where({ voucher_no: paid.voucherNo }).first()).toMatchObject({ status: 'batched', batch_id: id1 });
  // The table: the institution's name, its account (in full for finance, masked for HR), amount, voucher.
  const full = await csvOf(id1, finance);
  expect(full).toContain(`1,institution,${instId},Institution ${instId},${first},${fenToYuan(AMOUNT)},${paid.voucherNo}`);
  const masked = await csvOf(id1, hrIssuer);
  expect(masked).toContain(`1,institution,${instId},Institution ${instId},************2222,${fenToYuan(AMOUNT)},${paid.voucherNo}`);
  expect(masked.join('\n')).not.toContain(first);
  expect(full[full.length - 1]).toBe(`total,,,,1 lines,${fenToYuan(AMOUNT)},`);

  // ---- stamped, sent, the bank refuses the line ---------------------------------------------------
  expect((await request(app).post(`/v1/settlement-batches/${id1}/approve`).set(bearer(hrIssuer)).send({})).status).toBe(200);
  expect((await request(app).post(`/v1/settlement-batches/${id1}/send`).set(bearer(hrIssuer)).send({})).status).toBe(200);
  const rec = await request(app).post(`/v1/settlement-batches/${id1}/reconciliation`).set(bearer(finance)).set('content-type', 'text/csv').send('line,result,reason\n1,failed,account closed\n');
  expect(rec.status).toBe(200);
  expect(rec.body).toMatchObject({ failed: 1, paid: 0, open: 0, status: 'reconciled' });
  expect((await db('disbursements').where({ voucher_no: paid.voucherNo }).first()).status).toBe('failed');

  // Without a correction a later batch does not pick the failed line up.
  expect((await runBatch('2030-05-03')).created).toEqual([]);
  expect((await db('disbursements').where({ voucher_no: paid.voucherNo }).first()).status).toBe('failed');

  // ---- HR of another district corrects the account (any district may, as for approval) ----------
  const second = '6217000099999999';
  const fix = await request(app).put(url(instId)).set(bearer(hrElsewhere)).send({ account: second });
  expect(fix.status).toBe(200);
  expect(fix.body).toMatchObject({ institutionId: instId, oldAccount: '************2222', newAccount: '************9999', requeued: [paid.voucherNo] });
  expect(fix.body.changedBy).toMatch(/^hr-/);
  const audit = await db('account_changes').where({ institution_id: instId }).orderBy('id');
  expect(audit.map((a) => ({ person: a.person_ref, old: a.old_masked, new: a.new_masked, by: a.principal_id.split('-')[0] }))).toEqual([
    { person: null, old: null, new: '************2222', by: 'institution' },
    { person: null, old: '************2222', new: '************9999', by: 'hr' },
  ]);
  for (const a of audit) expect(a.changed_at).toBeInstanceOf(Date);
  expect(JSON.stringify(audit)).not.toContain(first);
  expect(JSON.stringify(audit)).not.toContain(second);
  // The audit table names exactly one payee per row, enforced by the database.
  await expect(db('account_changes').insert({ new_masked: '****', principal_id: 'x' })).rejects.toMatchObject({ code: '23514' });

  const r2 = await runBatch('2030-05-04');
  const id2 = `B-${ISSUER}-${FUND}-20300504`;
  expect(r2.created).toEqual([id2]);
  const { lines: l2 } = await batchOk(id2);
  expect(l2).toHaveLength(1);
  expect(l2[0]).toMatchObject({ voucher_no: paid.voucherNo, payee_type: 'institution', amount_fen: AMOUNT });
  expect(testPii.decrypt(l2[0].account_enc)).toBe(second);
  expect(await csvOf(id2, finance)).toContain(`1,institution,${instId},Institution ${instId},${second},${fenToYuan(AMOUNT)},${paid.voucherNo}`);
  expect(await db('disbursements').where({ voucher_no: paid.voucherNo }).first()).toMatchObject({ status: 'batched', batch_id: id2 });
  // One ledger row for the voucher, ever; one line per batch it went through.
  expect(await db('disbursements').where({ voucher_no: paid.voucherNo })).toHaveLength(1);
  expect((await db('batch_lines').where({ voucher_no: paid.voucherNo }).orderBy('batch_id')).map((l) => [l.batch_id, l.result])).toEqual([
    [id1, 'failed'],
    [id2, null],
  ]);
  // A correction with nothing failed requeues nothing.
  const again = await request(app).put(url(instId)).set(bearer(inst)).send({ account: second });
  expect(again.body).toMatchObject({ oldAccount: '************9999', newAccount: '************9999', requeued: [] });
  expect(await db('account_changes').where({ institution_id: instId })).toHaveLength(3);
}, 180_000);

test('R3.13: a batch file stored before the binary encrypted form (a `v1:` text token of base64) is still read and checked against its SHA-256', async () => {
  const id = `B-330604-employment_subsidy-${uid('').slice(-8)}`;
  await db('settlement_batches').insert({ id, district: '330604', funding_source: 'employment_subsidy', payment_route: 'treasury_centralised_payment', batch_date: '2030-06-01', total_fen: 0, line_count: 0 });
  const legacy = Buffer.from('district,330604\r\n', 'utf8');
  await db('batch_files').insert({ batch_id: id, format: 'csv', variant: 'full', content_enc: Buffer.from(testPii.encrypt(legacy.toString('base64')), 'utf8'), sha256: sha256(legacy), size: legacy.length });
  expect((await readBatchFile(db, testPii, id, 'csv', 'full'))!.equals(legacy)).toBe(true);
  await db('batch_files').where({ batch_id: id }).update({ sha256: sha256(Buffer.from('other')) });
  await expect(readBatchFile(db, testPii, id, 'csv', 'full')).rejects.toThrow(/does not match its SHA-256/);
});
