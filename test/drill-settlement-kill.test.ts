/**
 * Resilience drill: the worker process (`npx tsx workers/main.ts`, as deployed) is killed with SIGKILL
 * twice in the middle of one settlement batch run (R3.13) — once inside the preparation transaction
 * (the first batch's lines written, the second batch's header on its way), once inside the rendering of
 * the files (preparation committed, the first file on its way) — and a third worker finishes the run.
 *
 * The kills are placed deterministically, not by timing: the test holds a PostgreSQL lock the worker's
 * next statement must wait for (an uncommitted header row with the second batch's ID; then a SHARE
 * lock on `batch_files`), sees that statement waiting in `pg_stat_activity` and the activity started in
 * the workflow's pending activities, kills the worker, then lets go of the lock.
 *
 * The outcome must equal a control run of the same rows, undisturbed, on a second database: the same
 * batches with the same lines and totals, files with the same SHA-256 and bytes; no disbursement
 * batched twice or lost, no duplicate ledger or batch rows, every batch's total the sum of its lines.
 * A preparation that was not one transaction, a retry that redid or skipped work, or files that did
 * not render to the same bytes would each break one of these assertions.
 */
import type { ChildProcess } from 'node:child_process';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Knex } from 'knex';
import { prepareBatches, readBatchFile, renderBatchFiles } from '../activities/settlement-activities';
import { paymentRouteFor, type FundingSource } from '../activities/settlement-decision';
import { createDb, type Db } from '../db/connection';
import { migrateLatest } from '../db/migrate';
import { createDatabase, dropDatabase } from '../lib/postgres';
import { settlementBatchWorkflowId, type SettlementBatchResult } from '../workflows/settlement/contract';
import { VOUCHER_TASK_QUEUE } from '../workflows/voucher/contract';
import { exited, killGroup, newPoller, spawnWorkerProcess, until } from './helpers/drill';
import { devServerEnv, quietRuntime, testPii } from './helpers/env';

/** The test client's codec keys and personal-data keys (test/helpers/env.ts), handed to the worker process. */
const CODEC_KEYS = `t1:${'3'.repeat(64)}`;
const PERSON_REF_KEY = '1'.repeat(64);
const PII_KEY = '2'.repeat(64);
const DATE = '2031-03-04';
const DISTRICTS = ['330602', '330683'];
const FUNDS: FundingSource[] = ['skills_upgrading_account', 'ui_employment_promotion', 'employment_subsidy'];
const ROWS = 720;
const PENDING_STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

const testDbName = new URL(process.env.TEST_DATABASE_URL!).pathname.slice(1);
const names = { drill: `${testDbName}_drillsettle`.slice(0, 63), control: `${testDbName}_drillsettle_ctl`.slice(0, 63) };
let env: TestWorkflowEnvironment;
let drillUrl: string;
let db: Db;
let control: Db;
const children: ChildProcess[] = [];
/** The test's own lock-holding transactions: rolled back in afterAll if a failed assertion left one open. */
const held: Knex.Transaction[] = [];

// ---- the rows: the same plain data in both databases (ciphertexts differ, plaintexts do not) -------
interface Seed {
  institutions: { id: string; name: string; account: string | null }[];
  persons: { ref: string; last4: string; name: string; account: string | null }[];
  disbursements: { voucherNo: string; district: string; fund: FundingSource; payeeType: 'person' | 'institution'; payeeRef: string; amountFen: number; createdAt: string }[];
}

function seedData(): Seed {
  const institutions = Array.from({ length: 6 }, (_, k) => ({ id: `INSTDRILL${k}`, name: `绍兴培训学校 ${k}`, account: k === 5 ? null : `62220000${String(1000 + k).padStart(8, '0')}` }));
  const persons = Array.from({ length: 400 }, (_, k) => ({
    ref: `P${String(k).padStart(40, '0')}`,
    last4: String(1000 + k).slice(-4),
    name: `测试,"学员" ${k}`, // a comma and quotes: the CSV must quote, the XLSX escape, identically every time
    account: k % 97 === 13 ? null : `62170000${String(k).padStart(8, '0')}`,
  }));
  const base = Date.UTC(2031, 2, 1, 0, 0, 0);
  const disbursements = Array.from({ length: ROWS }, (_, k) => {
    const person = k % 3 !== 0;
    return {
      voucherNo: `SX${DISTRICTS[k % 2]}2031${String(k).padStart(6, '0')}`,
      district: DISTRICTS[k % 2]!,
      fund: FUNDS[Math.floor(k / 2) % 3]!,
      payeeType: person ? ('person' as const) : ('institution' as const),
      payeeRef: person ? persons[k % persons.length]!.ref : institutions[k % institutions.length]!.id,
      amountFen: 50_000 + ((k * 7919) % 200_000), // integer fen, 500.00 – 2499.99 yuan
      createdAt: new Date(base + k * 1000).toISOString(),
    };
  });
  return { institutions, persons, disbursements };
}

async function load(d: Db, s: Seed): Promise<void> {
  await d('institutions').insert(s.institutions.map((i) => ({ id: i.id, name: i.name, district: '330602', status: 'approved', bank_account_enc: i.account ? testPii.encrypt(i.account) : null })));
  await d('persons').insert(s.persons.map((p) => ({ person_ref: p.ref, id_number_enc: testPii.encrypt(`33060219900101${p.last4}`), id_number_last4: p.last4, name_enc: testPii.encrypt(p.name), bank_account_enc: p.account ? testPii.encrypt(p.account) : null, ui_district: '330602' })));
  for (let i = 0; i < s.disbursements.length; i += 200) {
    await d('disbursements').insert(
      s.disbursements.slice(i, i + 200).map((x) => ({
        voucher_no: x.voucherNo,
        payer_district: x.district,
        payee_type: x.payeeType,
        payee_ref: x.payeeRef,
        amount_fen: x.amountFen,
        funding_source: x.fund,
        payment_route: paymentRouteFor(x.fund),
        status: 'approved',
        budget_year: 2031,
        reserved_at: x.createdAt,
        created_at: x.createdAt,
      })),
    );
  }
}

async function ownDb(name: string): Promise<{ url: string; db: Db }> {
  const url = await createDatabase(process.env.TEST_DATABASE_URL!, name);
  const d = createDb(url, { max: 5 });
  await migrateLatest(d);
  return { url, db: d };
}

beforeAll(async () => {
  quietRuntime();
  env = await devServerEnv();
  const drill = await ownDb(names.drill);
  drillUrl = drill.url;
  db = drill.db;
  control = (await ownDb(names.control)).db;
}, 180_000);

afterAll(async () => {
  // SIGKILL: a worker stopping gracefully would wait for an activity blocked on a lock held below.
  for (const c of children) killGroup(c, 'SIGKILL');
  await Promise.all(children.map(exited));
  for (const t of held) if (!t.isCompleted()) await t.rollback().catch(() => undefined);
  await env?.teardown();
  await db?.destroy();
  await control?.destroy();
  for (const n of Object.values(names)) await dropDatabase(process.env.TEST_DATABASE_URL!, n).catch(() => undefined);
});

// ---- the worker process ------------------------------------------------------------------------
async function startWorkerProcess(): Promise<ChildProcess> {
  const child = await spawnWorkerProcess({ databaseUrl: drillUrl, temporalAddress: env.address, codecKeys: CODEC_KEYS, env: { PERSON_REF_KEY, PII_KEY } });
  children.push(child);
  return child;
}




/** The backend of the drill database waiting for a lock while running `insert into "<table>"`. */
const waitingInsert = (table: string) =>
  until(async () => {
    const r = await db.raw(
      `select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike ?`,
      [`insert into "${table}"%`],
    );
    return r.rows[0]?.pid as number | undefined;
  }, 150_000, `a worker statement waiting to insert into ${table}`);

/** Until the backend `pid` (a dead worker's) has ended. */
const backendGone = (pid: number) =>
  until(async () => ((await db.raw('select 1 from pg_stat_activity where pid = ?', [pid])).rows.length === 0 ? true : undefined), 60_000, `backend ${pid} ending`);

/** The workflow's pending activity: which one, started, which attempt. */
async function pendingActivity(workflowId: string) {
  const d = await env.client.workflow.getHandle(workflowId).describe();
  const p = d.raw.pendingActivities?.[0];
  return p ? { type: p.activityType?.name, started: p.state === PENDING_STARTED, attempt: p.attempt } : undefined;
}

// ---- what a finished run looks like, in either database -------------------------------------------
async function outcome(d: Db) {
  const batches = await d('settlement_batches').where({ batch_date: DATE }).orderBy('id');
  const lines = await d('batch_lines').orderBy(['batch_id', 'line_no']);
  const files = await d('batch_files').orderBy(['batch_id', 'variant', 'format']).select('batch_id', 'format', 'variant', 'sha256', 'size');
  return {
    batches: batches.map((b) => ({ id: b.id, district: b.district, fundingSource: b.funding_source, route: b.payment_route, status: b.status, totalFen: Number(b.total_fen), lineCount: b.line_count })),
    lines: lines.map((l) => ({ batchId: l.batch_id, lineNo: l.line_no, voucherNo: l.voucher_no, payeeType: l.payee_type, payeeRef: l.payee_ref, payeeId: l.payee_id_masked, amountFen: Number(l.amount_fen), name: testPii.decrypt(l.payee_name_enc), account: l.account_enc ? testPii.decrypt(l.account_enc) : null })),
    files: files.map((f) => ({ batchId: f.batch_id, format: f.format, variant: f.variant, sha256: f.sha256, size: Number(f.size) })),
  };
}

test('R3.13 drill: kill -9 of the worker process inside batch preparation and again inside file rendering; a new worker finishes the run exactly as an undisturbed control run: same files (SHA-256), no line or ledger row twice, totals equal to the lines', async () => {
  const seed = seedData();
  await load(db, seed);
  await load(control, seed);
  const payable = seed.disbursements.filter((x) =>
    x.payeeType === 'person' ? seed.persons.find((p) => p.ref === x.payeeRef)!.account : seed.institutions.find((i) => i.id === x.payeeRef)!.account,
  );
  expect(payable.length).toBeGreaterThan(ROWS / 2);
  expect(payable.length).toBeLessThan(ROWS); // some payees have no account: their rows must wait

  // ---- control: the same rows, undisturbed, in this process --------------------------------------
  const c = await prepareBatches(control, testPii, DATE);
  for (const id of c.batchIds) await renderBatchFiles(control, testPii, id);
  const expected = await outcome(control);
  expect(expected.batches).toHaveLength(DISTRICTS.length * FUNDS.length);
  expect(expected.lines).toHaveLength(payable.length);
  expect(expected.files).toHaveLength(4 * expected.batches.length);

  const workflowId = settlementBatchWorkflowId(DATE);
  const handle = await (async () => {
    // ---- worker A dies inside the preparation transaction ------------------------------------------
    const a = await startWorkerProcess();
    const identityA = await newPoller(env.client, 'activity', []);
    // An uncommitted header with the second batch's ID: the worker writes the first batch's lines, then
    // its insert of the second header must wait for this transaction.
    const hold = await db.transaction();
    held.push(hold);
    await hold('settlement_batches').insert({ id: c.batchIds[1], district: 'x', funding_source: 'x', payment_route: 'x', batch_date: DATE, total_fen: 0, line_count: 0 });
    const h = await env.client.workflow.start('settlementBatchWorkflow', { workflowId, taskQueue: VOUCHER_TASK_QUEUE, args: [{ date: DATE }], workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE });
    const blockedA = await waitingInsert('settlement_batches');
    expect(await pendingActivity(workflowId)).toMatchObject({ type: 'settlementPrepareBatches', started: true, attempt: 1 });
    // The first batch's lines exist inside the worker's open transaction, invisible to everyone else.
    expect(await db('batch_lines').count<{ n: string }[]>({ n: '*' })).toEqual([{ n: 0 }]);
    killGroup(a, 'SIGKILL');
    await exited(a);
    expect(a.signalCode).toBe('SIGKILL');
    await hold.rollback();
    await backendGone(blockedA);
    // Nothing of the killed attempt remains: no batch, no line, every row still waiting to be batched.
    expect(await db('settlement_batches').count<{ n: string }[]>({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await db('batch_lines').count<{ n: string }[]>({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await db('disbursements').whereNot({ status: 'approved' }).count<{ n: string }[]>({ n: '*' })).toEqual([{ n: 0 }]);

    // ---- worker B prepares (committed), then dies inside the rendering --------------------------
    const files = await db.transaction();
    held.push(files);
    await files.raw('lock table batch_files in share mode'); // reads go on; the first file insert waits
    const b = await startWorkerProcess();
    const identityB = await newPoller(env.client, 'activity', [identityA]);
    const blockedB = await waitingInsert('batch_files');
    expect(await pendingActivity(workflowId)).toMatchObject({ type: 'settlementRenderBatchFiles', started: true, attempt: 1 });
    const prepared = await outcome(db);
    expect(prepared.batches).toEqual(expected.batches);
    expect(prepared.lines).toEqual(expected.lines);
    killGroup(b, 'SIGKILL');
    await exited(b);
    expect(b.signalCode).toBe('SIGKILL');
    await files.commit();
    await backendGone(blockedB);
    // The dead worker's waiting insert may have gone through alone: a batch with part of its files.
    const partial = Number((await db('batch_files').count<{ n: string }[]>({ n: '*' }))[0]!.n);
    expect(partial).toBeLessThan(4);

    // ---- worker C finishes ------------------------------------------------------------------------
    await startWorkerProcess();
    await newPoller(env.client, 'activity', [identityA, identityB]);
    return h;
  })();
  const result = (await handle.result()) as SettlementBatchResult;

  // ---- the same as the control run ---------------------------------------------------------------
  expect(result.date).toBe(DATE);
  expect(result.batchIds).toEqual(c.batchIds);
  expect(result.created).toEqual(c.created); // preparation's effect: all or nothing, once
  const got = await outcome(db);
  expect(got.batches).toEqual(expected.batches);
  expect(got.lines).toEqual(expected.lines);
  expect(got.files).toEqual(expected.files);
  for (const id of c.batchIds) {
    expect(result.files[id]!.map((f) => `${f.variant}.${f.format}:${f.sha256}`).sort()).toEqual(
      expected.files.filter((f) => f.batchId === id).map((f) => `${f.variant}.${f.format}:${f.sha256}`).sort(),
    );
    for (const variant of ['masked', 'full'] as const) {
      for (const format of ['csv', 'xlsx'] as const) {
        // Stored bytes check against their own SHA-256 and equal the control's, byte for byte.
        expect((await readBatchFile(db, testPii, id, format, variant))!.equals((await readBatchFile(control, testPii, id, format, variant))!)).toBe(true);
      }
    }
  }

  // ---- money: nothing twice, nothing lost -----------------------------------------------------------
  expect(await db('disbursements').count<{ n: string }[]>({ n: '*' })).toEqual([{ n: ROWS }]);
  const twice = await db('batch_lines').select('disbursement_id').count<{ n: string }[]>({ n: '*' }).groupBy('disbursement_id').havingRaw('count(*) > 1');
  expect(twice).toEqual([]);
  const ledger = await db('disbursements as d').leftJoin('batch_lines as l', 'l.disbursement_id', 'd.id').select('d.voucher_no', 'd.status', 'd.batch_id', 'l.batch_id as line_batch');
  const payableNos = new Set(payable.map((x) => x.voucherNo));
  for (const r of ledger) {
    if (payableNos.has(r.voucher_no)) expect({ no: r.voucher_no, status: r.status, batch: r.batch_id }).toEqual({ no: r.voucher_no, status: 'batched', batch: r.line_batch });
    else expect({ no: r.voucher_no, status: r.status, line: r.line_batch }).toEqual({ no: r.voucher_no, status: 'approved', line: null });
  }
  for (const b of got.batches) {
    const ls = got.lines.filter((l) => l.batchId === b.id);
    expect({ id: b.id, total: b.totalFen, count: b.lineCount }).toEqual({ id: b.id, total: ls.reduce((s, l) => s + l.amountFen, 0), count: ls.length });
  }
  expect(got.batches.reduce((s, b) => s + b.totalFen, 0)).toBe(payable.reduce((s, x) => s + x.amountFen, 0));

  // ---- the history shows both kills: each activity needed a second attempt -----------------------------
  const history = await handle.fetchHistory();
  const typeOf = new Map<string, string>();
  const attempts: Record<string, number[]> = {};
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) typeOf.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
    const s = e.activityTaskStartedEventAttributes;
    if (s) (attempts[typeOf.get(String(s.scheduledEventId))!] ??= []).push(s.attempt ?? 0);
  }
  expect(attempts.settlementPrepareBatches).toEqual([2]);
  expect(attempts.settlementRenderBatchFiles![0]).toBeGreaterThanOrEqual(2);
  expect(attempts.settlementRenderBatchFiles!.slice(1)).toEqual(Array(c.batchIds.length - 1).fill(1));

  // A second run for the date (another on-demand request) finds everything done and changes nothing.
  const again = (await env.client.workflow.execute('settlementBatchWorkflow', { workflowId: `${workflowId}:again`, taskQueue: VOUCHER_TASK_QUEUE, args: [{ date: DATE }] })) as SettlementBatchResult;
  expect(again.created).toEqual([]);
  expect(await outcome(db)).toEqual(got);
}, 600_000);
