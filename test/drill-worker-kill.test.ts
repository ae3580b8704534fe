/**
 * Resilience drill: the worker process (`npx tsx workers/main.ts`, exactly as deployed) is killed with
 * SIGKILL in the middle of 20 voucher lifecycles — some vouchers between check-ins, some with their
 * settlement just signalled — and a new worker process takes over. Every voucher must end as an
 * undisturbed run ends (the control group, driven the same way with no kill): settled, the same
 * attendance and subsidy, exactly one decision and one disbursement row, the read model in step.
 */
import type { ChildProcess } from 'node:child_process';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { buildVoucherInput } from '../api/voucher-input';
import type { Db } from '../db/connection';
import { VOUCHER_TASK_QUEUE, voucherWorkflowId } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate } from '../workflows/voucher/messages';
import type { voucherWorkflow } from '../workflows/voucher/workflow';
import { exited, killGroup, ledgerOf as ledgerOfIn, newPoller, outcome, spawnWorkerProcess, until } from './helpers/drill';
import { devServerEnv, quietRuntime, testDb, testPii } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation, type ClassFixture } from './helpers/fixtures';

/** The test client's codec keys (test/helpers/env.ts testCodecKeys), handed to the worker process. */
const CODEC_KEYS = `t1:${'3'.repeat(64)}`;
const ISSUER = '330604';
const SESSIONS = 10;
const MINUTES = 90;

let env: TestWorkflowEnvironment;
let db: Db;
let occupationCode: string;
let cls: ClassFixture;
let controlCls: ClassFixture;
const children: ChildProcess[] = [];

beforeAll(async () => {
  quietRuntime();
  env = await devServerEnv();
  db = testDb();
  occupationCode = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  cls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: SESSIONS, minutes: MINUTES });
  controlCls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: SESSIONS, minutes: MINUTES });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: 150_000, fundingSource: 'ui_employment_promotion' });
}, 180_000);

afterAll(async () => {
  for (const c of children) killGroup(c, 'SIGTERM');
  await env?.teardown();
  await db?.destroy();
});

/** Starts `npx tsx workers/main.ts` in its own process group, so SIGKILL reaches npx, tsx and node alike. */
async function startWorkerProcess(): Promise<ChildProcess> {
  const child = await spawnWorkerProcess({ databaseUrl: process.env.TEST_DATABASE_URL!, temporalAddress: env.address, codecKeys: CODEC_KEYS });
  children.push(child);
  return child;
}




async function issueAndEnrol(c: ClassFixture) {
  const person = await makePerson(db, testPii);
  const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: ISSUER, personRef: person.personRef, occupationCode, obtainedAt: Date.now() });
  const h = await env.client.workflow.start<typeof voucherWorkflow>('voucherWorkflow', {
    workflowId: voucherWorkflowId(input.voucherNo),
    taskQueue: VOUCHER_TASK_QUEUE,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
  });
  expect((await h.executeUpdate(activateUpdate, { args: [{ channel: 'drill' }] })).status).toBe('activated');
  expect((await h.executeUpdate(enrolUpdate, { args: [{ classId: c.classId, institutionId: c.institutionId, review: { passed: true } }] })).status).toBe('in_training');
  return { no: input.voucherNo, h };
}

type Handle = Awaited<ReturnType<typeof issueAndEnrol>>['h'];
const checkIn = (h: Handle, sessionId: string) => h.signal(checkInSignal, { sessionId, verifiedMinutes: MINUTES, at: Date.now() });

const ledgerOf = (no: string) => ledgerOfIn(db, no);

test('R3.4 R3.9 R3.10 drill: kill -9 of the worker process mid-lifecycle; a new worker finishes all 20 vouchers exactly as an undisturbed run, one disbursement row each', async () => {
  // ---- worker A, 20 vouchers into training with half their check-ins ----------------------
  const a = await startWorkerProcess();
  const identityA = await newPoller(env.client, 'workflow', []);
  const drill: { no: string; h: Handle }[] = [];
  for (let k = 0; k < 20; k += 5) drill.push(...(await Promise.all(Array.from({ length: 5 }, () => issueAndEnrol(cls)))));
  const half = cls.sessionIds.slice(0, SESSIONS / 2);
  const rest = cls.sessionIds.slice(SESSIONS / 2, SESSIONS - 1); // 9 of 10 sessions: rate 90%
  await Promise.all(drill.map(async ({ h }) => { for (const s of half) await checkIn(h, s); }));
  // The first ten finish their check-ins and are completed: settlement starts on worker A...
  await Promise.all(drill.slice(0, 10).map(async ({ h }) => {
    for (const s of rest) await checkIn(h, s);
    await h.signal(completeSignal, { assessmentPassed: true });
  }));
  // ...and the worker dies mid-way, without a chance to finish anything.
  killGroup(a, 'SIGKILL');
  await exited(a);
  expect(a.signalCode).toBe('SIGKILL');

  // While no worker runs, the other ten keep checking in and are completed: the server keeps it all.
  await Promise.all(drill.slice(10).map(async ({ h }) => {
    for (const s of rest) await checkIn(h, s);
    await h.signal(completeSignal, { assessmentPassed: true });
  }));

  // ---- worker B takes over ------------------------------------------------------------------
  await startWorkerProcess();
  await newPoller(env.client, 'workflow', [identityA]);
  const results = await Promise.all(drill.map(({ h }) => h.result()));

  // ---- control group: the same lifecycle on the same worker, undisturbed ---------------------
  const control = await Promise.all(Array.from({ length: 3 }, () => issueAndEnrol(controlCls)));
  await Promise.all(control.map(async ({ h }) => {
    for (const s of [...half, ...rest]) await checkIn(h, s);
    await h.signal(completeSignal, { assessmentPassed: true });
  }));
  const controlResults = await Promise.all(control.map(({ h }) => h.result()));
  const expected = outcome(controlResults[0]!);
  expect(expected).toMatchObject({ status: 'settled', checkInRate: 90, settlement: { outcome: 'approved', amountFen: 150_000, payerDistrict: ISSUER } });
  for (const r of controlResults) expect(outcome(r)).toEqual(expected);

  for (const [i, r] of results.entries()) {
    // Same as undisturbed, except the payee is each class's own institution (the same here).
    expect({ no: drill[i]!.no, ...outcome(r) }).toEqual({ no: drill[i]!.no, ...expected });
    const ledger = await until(async () => {
      const l = await ledgerOf(drill[i]!.no);
      return l.readModel?.status === 'settled' && l.readModel.revision === r.revision ? l : undefined;
    }, 30_000, `read model of ${drill[i]!.no}`);
    expect({ decisions: ledger.decisions, disbursements: ledger.disbursements, enrolments: ledger.enrolments, quota: ledger.quota }).toEqual({ decisions: 1, disbursements: 1, enrolments: 1, quota: 1 });
  }
  const nos = drill.map((d) => d.no);
  const total = await db('disbursements').whereIn('voucher_no', nos).sum<{ s: number }[]>({ s: 'amount_fen' });
  expect(Number(total[0]!.s)).toBe(20 * 150_000);
}, 600_000);
