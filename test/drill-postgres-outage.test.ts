/**
 * Resilience drill: PostgreSQL refuses connections for 30 s (wall clock) in the middle of settlement.
 * The worker and the API reach the database through a TCP proxy that closes its listener (new
 * connections: ECONNREFUSED) and cuts every open connection; 30 s later it listens again.
 *
 * While the database is away: settlement and batch activities fail and are retried by Temporal; the API
 * answers at once with 503, `Retry-After` and a problem of stable type (…/problems/database-unavailable)
 * — /readyz with 503 and `Retry-After` too — and a refused request changes nothing. Once it is back:
 * every voucher settles exactly as an undisturbed run, with exactly one decision and one disbursement row,
 * and every disbursement lands in exactly one settlement batch line.
 */
import request from 'supertest';
import { Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { Express } from 'express';
import { createAllActivities } from '../activities';
import type { SettleInput } from '../activities/voucher-activities';
import { createApp } from '../api/app';
import { buildVoucherInput } from '../api/voucher-input';
import { API_DB_OPTIONS, createDb, type Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { requestIdActivityInterceptor } from '../lib/request-id';
import { localDate } from '../policy/calendar';
import { settlementBatchWorkflow } from '../workflows/settlement/batch';
import { voucherWorkflowId, type VoucherSnapshot } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate, stateQuery } from '../workflows/voucher/messages';
import type { voucherWorkflow } from '../workflows/voucher/workflow';
import { bearer, keyFor } from './helpers/api';
import { ledgerOf, outcome, ownDatabase, quietDrill, TcpProxy, until } from './helpers/drill';
import { devServerEnv, testDataConverter, testPii, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation, type ClassFixture } from './helpers/fixtures';

const OUTAGE_MS = 30_000;
const ISSUER = '330604';
const FUND = 'ui_employment_promotion';
const SESSIONS = 10;
const MINUTES = 90;

let own: Awaited<ReturnType<typeof ownDatabase>>;
let db: Db; // direct: fixtures and assertions
let workerDb: Db; // through the proxy
let apiDb: Db; // through the proxy, with the API's pool options
let proxy: TcpProxy;
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let app: Express;
let cls: ClassFixture;
let occupationCode: string;

/** Every settlement / batch activity attempt the worker made, and how it ended. */
const attempts: { activity: string; key: string; attempt: number; ok: boolean; at: number }[] = [];
let outageStarted: (() => void) | undefined;
let restoreTimer: NodeJS.Timeout | undefined;
const outageBegins = new Promise<void>((r) => (outageStarted = r));

beforeAll(async () => {
  quietDrill();
  own = await ownDatabase('pgo');
  db = own.db;
  const proxied = await TcpProxy.forUrl(own.url);
  proxy = proxied.proxy;
  workerDb = createDb(proxied.url, { max: 5 });
  apiDb = createDb(proxied.url, { ...API_DB_OPTIONS, max: 5 });
  env = await devServerEnv();
  taskQueue = uniqueTaskQueue('drill-pg');
  const base = createAllActivities({ db: workerDb, pii: testPii });
  const recorded =
    <A extends unknown[], R>(activity: string, key: (...a: A) => string, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const attempt = Context.current().info.attempt;
      try {
        const r = await fn(...a);
        attempts.push({ activity, key: key(...a), attempt, ok: true, at: Date.now() });
        return r;
      } catch (e) {
        attempts.push({ activity, key: key(...a), attempt, ok: false, at: Date.now() });
        throw e;
      }
    };
  const activities = {
    ...base,
    // The outage begins the moment the first settlement starts.
    settleVoucher: recorded('settleVoucher', (i: SettleInput) => i.voucherNo, async (i: SettleInput) => {
      if (outageStarted) {
        const started = outageStarted;
        outageStarted = undefined;
        await proxy.down();
        started();
      }
      return base.settleVoucher(i);
    }),
    settlementPrepareBatches: recorded('settlementPrepareBatches', (i: { date: string }) => i.date, base.settlementPrepareBatches),
    settlementRenderBatchFiles: recorded('settlementRenderBatchFiles', (i: { batchId: string }) => i.batchId, base.settlementRenderBatchFiles),
  };
  const bundle = process.env.TEST_WORKFLOW_BUNDLE;
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') }),
    activities,
    dataConverter: testDataConverter,
    interceptors: { activity: [requestIdActivityInterceptor] },
  });
  running = worker.run();
  app = createApp({ db: apiDb, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, rateLimitPerMinute: 100_000 });

  occupationCode = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  // Directed vouchers pay the institution (R3.9): it needs an account for the batch table (R3.13).
  await db('institutions').where({ id: institutionId }).update({ bank_account_enc: testPii.encrypt('6222020000000001') });
  cls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: SESSIONS, minutes: MINUTES });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: 150_000, fundingSource: FUND });
  const year = Number(localDate(Date.now(), 'Asia/Shanghai').slice(0, 4));
  await db('budgets').insert({ district: ISSUER, funding_source: FUND, year, total_fen: 100_000_000, reserved_fen: 0 });
}, 180_000);

afterAll(async () => {
  clearTimeout(restoreTimer);
  if (proxy && !proxy.isUp) await proxy.up();
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running?.catch(() => undefined);
  await env?.teardown();
  await workerDb?.destroy();
  await apiDb?.destroy();
  await proxy?.down();
  await own?.drop();
});

type Handle = WorkflowHandle<typeof voucherWorkflow>;

async function inTraining(): Promise<{ no: string; h: Handle }> {
  const person = await makePerson(db, testPii);
  const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: ISSUER, personRef: person.personRef, occupationCode, obtainedAt: Date.now() });
  const h = await env.client.workflow.start<typeof voucherWorkflow>('voucherWorkflow', {
    workflowId: voucherWorkflowId(input.voucherNo),
    taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
  });
  await h.executeUpdate(activateUpdate, { args: [{ channel: 'drill' }] });
  await h.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId: cls.institutionId, review: { passed: true } }] });
  for (const s of cls.sessionIds.slice(0, SESSIONS - 1)) await h.signal(checkInSignal, { sessionId: s, verifiedMinutes: MINUTES, at: Date.now() });
  return { no: input.voucherNo, h };
}

/** A request during the outage: answered within `ms` with 503, Retry-After and the stable problem type. */
async function expectUnavailable(req: request.Test, ms = 5_000) {
  const t0 = Date.now();
  const res = await req.timeout(ms + 5_000);
  const took = Date.now() - t0;
  expect({ status: res.status, retryAfter: res.headers['retry-after'], fast: took < ms }).toEqual({ status: 503, retryAfter: '5', fast: true });
  return res;
}

test('R3.9 R3.12 R3.13 drill: PostgreSQL refuses connections for 30 s during settlement — activities retry, the API answers 503 with Retry-After, and afterwards exactly one decision, one disbursement and one batch line per voucher', async () => {
  const hr = await keyFor(db, 'hr', { district: ISSUER });
  const institution = await keyFor(db, 'institution', { institutionId: cls.institutionId });
  const operator = await keyFor(db, 'operator');
  const first = await Promise.all(Array.from({ length: 5 }, () => inTraining())); // completed: settlement starts, the database goes
  const during = await Promise.all(Array.from({ length: 5 }, () => inTraining())); // completed while it is away
  const viaApi = await Promise.all(Array.from({ length: 2 }, () => inTraining())); // the API refuses to complete them while away
  const all = [...first, ...during, ...viaApi];
  expect((await request(app).get('/readyz')).status).toBe(200);

  // ---- the outage -------------------------------------------------------------------------------
  await Promise.all(first.map(({ h }) => h.signal(completeSignal, { assessmentPassed: true })));
  await outageBegins;
  const downAt = Date.now();
  // The database comes back exactly OUTAGE_MS after it went, whatever the test is doing then.
  const restored = new Promise<number>((resolve) => (restoreTimer = setTimeout(() => void proxy.up().then(() => resolve(Date.now())), OUTAGE_MS)));
  await Promise.all(during.map(({ h }) => h.signal(completeSignal, { assessmentPassed: true })));
  // A settlement batch started while the database is away (its activities retry, up to 10 attempts).
  const today = localDate(Date.now(), 'Asia/Shanghai');
  const batch1 = await env.client.workflow.start(settlementBatchWorkflow, { workflowId: `SettlementBatch:${today}-drill`, taskQueue, args: [{ date: today }] });

  // The API: 503 + Retry-After at once, problem+json of a stable type; liveness unaffected.
  const ready = await expectUnavailable(request(app).get('/readyz'));
  expect(ready.body.checks.postgres).not.toBe('ok');
  expect((await request(app).get('/healthz')).status).toBe(200);
  const read = await expectUnavailable(request(app).get(`/v1/vouchers/${first[0]!.no}`).set(bearer(hr)));
  expect(read.headers['content-type']).toContain('application/problem+json');
  expect(read.body).toMatchObject({ type: 'https://vouchers.shaoxing.example/problems/database-unavailable', status: 503, code: 'DATABASE_UNAVAILABLE' });
  for (const { no } of viaApi) {
    const res = await expectUnavailable(request(app).post(`/v1/vouchers/${no}/complete`).set(bearer(institution)).send({ assessmentPassed: true }));
    expect(res.body.code).toBe('DATABASE_UNAVAILABLE');
  }
  await expectUnavailable(request(app).post(`/v1/vouchers/${viaApi[0]!.no}/check-ins`).set(bearer(institution)).set('Idempotency-Key', 'drill-k1').send({ sessionId: cls.sessionIds[SESSIONS - 1] }));
  await expectUnavailable(request(app).get('/v1/vouchers').set(bearer(operator)));
  // Requests keep answering 503 (never hanging) for as long as the outage lasts (leaving a margin
  // larger than one request's allowance before the database returns).
  let polled = 0;
  while (Date.now() - downAt < OUTAGE_MS - 7_000) {
    await expectUnavailable(request(app).get(`/v1/vouchers/${during[0]!.no}`).set(bearer(hr)));
    polled += 1;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  // Nothing was decided while the database was away (read directly, not through the proxy).
  expect(proxy.isUp).toBe(false);
  expect(await db('subsidy_decisions').whereIn('voucher_no', all.map((v) => v.no))).toHaveLength(0);
  const upAt = await restored;
  // The refused completes did nothing.
  for (const { h } of viaApi) expect((await h.query(stateQuery)).status).toBe('in_training');

  // ---- the database is back -----------------------------------------------------------------------
  const failedDuring = attempts.filter((a) => !a.ok && a.at >= downAt && a.at <= upAt);
  expect(failedDuring.some((a) => a.activity === 'settleVoucher')).toBe(true);
  expect(failedDuring.some((a) => a.activity === 'settlementPrepareBatches')).toBe(true);
  // The client retries after Retry-After: now it works.
  const ok = await until(async () => {
    const r = await request(app).get('/readyz');
    return r.status === 200 ? r : undefined;
  }, 15_000, '/readyz back to 200');
  expect(ok.body.status).toBe('ready');
  for (const { no } of viaApi) expect((await request(app).post(`/v1/vouchers/${no}/complete`).set(bearer(institution)).send({ assessmentPassed: true })).status).toBe(202);
  const results = await Promise.all(all.map(({ h }) => h.result()));
  const recovered = Date.now();
  await batch1.result();

  // The same outcome as without an outage (9 of 10 sessions, the catalogue amount), and the ledger once.
  for (const [i, r] of results.entries()) {
    const no = all[i]!.no;
    expect({ no, ...outcome(r) }).toMatchObject({ no, status: 'settled', attendedMinutes: 9 * MINUTES, checkInRate: 90, settlement: { outcome: 'approved', amountFen: 150_000, payerDistrict: ISSUER, fundingSource: FUND } });
    const ledger = await until(async () => {
      const l = await ledgerOf(db, no);
      return l.readModel?.status === 'settled' && l.readModel.revision === (r as VoucherSnapshot).revision ? l : undefined;
    }, 30_000, `read model of ${no}`);
    expect({ no, decisions: ledger.decisions, disbursements: ledger.disbursements, enrolments: ledger.enrolments, quota: ledger.quota }).toEqual({ no, decisions: 1, disbursements: 1, enrolments: 1, quota: 1 });
  }
  const nos = all.map((v) => v.no);
  const budget = await db('budgets').where({ district: ISSUER, funding_source: FUND }).first();
  expect(Number(budget.reserved_fen)).toBe(all.length * 150_000); // reserved once per voucher, never twice

  // Disbursements approved after the first batch gathered wait for the next day's batch (R3.13).
  const tomorrow = localDate(Date.now() + 86_400_000, 'Asia/Shanghai');
  await env.client.workflow.execute(settlementBatchWorkflow, { workflowId: `SettlementBatch:${tomorrow}-drill`, taskQueue, args: [{ date: tomorrow }] });
  const lines = await db('batch_lines').whereIn('voucher_no', nos).select('voucher_no');
  expect(lines.map((l: { voucher_no: string }) => l.voucher_no).sort()).toEqual([...nos].sort());
  const files = await db('batch_files').count<{ n: string }[]>({ n: '*' });
  expect(Number(files[0]!.n) % 4).toBe(0); // four files per batch, none doubled

  const retried = attempts.filter((a) => a.activity === 'settleVoucher' && a.attempt > 1 && a.ok).length;
  console.log(
    `postgres drill: outage ${upAt - downAt} ms (API polled ${polled} times: 503 each); ${failedDuring.length} failed activity attempts during it; ` +
      `${retried} settlements succeeded on a retry; all ${all.length} settled ${recovered - upAt} ms after the database returned`,
  );
}, 300_000);
