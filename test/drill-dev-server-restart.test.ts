/**
 * Resilience drill: the Temporal dev server (`temporal server start-dev` on a persistent SQLite file, as
 * `npm start` runs it) is stopped twice while 16 vouchers are in every phase of their lifecycle — first
 * gracefully (SIGTERM), then as a crash (SIGKILL) — and started again on the same file and port. The
 * worker keeps running through both outages and reconnects by itself. Every voucher must end exactly as
 * an undisturbed run ends (a control group driven after the restarts): settled, the same attendance and
 * subsidy, one decision and one disbursement row each; what the server acknowledged before it went
 * away (starts, Updates, signals, pending timers) is all still there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Express } from 'express';
import request from 'supertest';
import { createAllActivities } from '../activities';
import { createApp } from '../api/app';
import { createLogger } from '../lib/logger';
import { buildVoucherInput } from '../api/voucher-input';
import type { Db } from '../db/connection';
import { requestIdActivityInterceptor } from '../lib/request-id';
import { connectClient } from '../lib/temporal-connection';
import { voucherWorkflowId, type VoucherSnapshot } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate, stateQuery } from '../workflows/voucher/messages';
import type { voucherWorkflow } from '../workflows/voucher/workflow';
import { bearer, keyFor } from './helpers/api';
import { DevServer, fixedFreePort, ledgerOf, outcome, ownDatabase, quietDrill, until } from './helpers/drill';
import { testCodecKeys, testDataConverter, testPii, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation, type ClassFixture } from './helpers/fixtures';

const ISSUER = '330604';
const SESSIONS = 10;
const MINUTES = 90;
const EventType = temporal.api.enums.v1.EventType;

let own: Awaited<ReturnType<typeof ownDatabase>>;
let db: Db;
let tmp: string;
let server: DevServer;
let connection: Connection;
let client: Client;
let native: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let occupationCode: string;
let cls: ClassFixture;
let controlCls: ClassFixture;
let app: Express;
let apiClient: Client;

beforeAll(async () => {
  quietDrill();
  own = await ownDatabase('drs');
  db = own.db;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'drill-dev-server-'));
  const cli = process.env.TEMPORAL_CLI_PATH;
  if (!cli) throw new Error('TEMPORAL_CLI_PATH is not set: run the tests through `npm test`');
  server = new DevServer(cli, path.join(tmp, 'temporal.db'), await fixedFreePort());
  await server.start();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, dataConverter: testDataConverter });
  native = await NativeConnection.connect({ address: server.address });
  taskQueue = uniqueTaskQueue('drill-restart');
  const bundle = process.env.TEST_WORKFLOW_BUNDLE;
  worker = await Worker.create({
    connection: native,
    taskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') }),
    activities: createAllActivities({ db }),
    dataConverter: testDataConverter,
    interceptors: { activity: [requestIdActivityInterceptor] },
  });
  running = worker.run();
  // The API has a client of its own, built as api/main.ts builds it (lib/temporal-connection.ts: native, with its breaker).
  apiClient = await connectClient(server.address, 'default', testCodecKeys);
  app = createApp({ db, client: apiClient, pii: testPii, logger: createLogger('silent'), taskQueue, rateLimitPerMinute: 100_000 });
  occupationCode = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  cls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: SESSIONS, minutes: MINUTES });
  controlCls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: SESSIONS, minutes: MINUTES });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: 150_000, fundingSource: 'ui_employment_promotion' });
}, 180_000);

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running?.catch(() => undefined);
  await native?.close().catch(() => undefined);
  await connection?.close().catch(() => undefined);
  await apiClient?.connection.close().catch(() => undefined);
  await server?.stop('SIGTERM');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await own?.drop();
});

type Handle = WorkflowHandle<typeof voucherWorkflow>;

async function issue(): Promise<{ no: string; h: Handle }> {
  const person = await makePerson(db, testPii);
  const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: ISSUER, personRef: person.personRef, occupationCode, obtainedAt: Date.now() });
  const h = await client.workflow.start<typeof voucherWorkflow>('voucherWorkflow', {
    workflowId: voucherWorkflowId(input.voucherNo),
    taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
  });
  return { no: input.voucherNo, h };
}
const activate = async (h: Handle) => expect((await h.executeUpdate(activateUpdate, { args: [{ channel: 'drill' }] })).status).toBe('activated');
const enrol = async (h: Handle, c: ClassFixture) =>
  expect((await h.executeUpdate(enrolUpdate, { args: [{ classId: c.classId, institutionId: c.institutionId, review: { passed: true } }] })).status).toBe('in_training');
const checkIns = async (h: Handle, sessionIds: string[]) => {
  for (const s of sessionIds) await h.signal(checkInSignal, { sessionId: s, verifiedMinutes: MINUTES, at: Date.now() });
};
const complete = (h: Handle) => h.signal(completeSignal, { assessmentPassed: true });
const state = (h: Handle) => h.query(stateQuery);

/** What the server holds of a voucher: its status, attendance, and timers started but not fired. */
async function durable(h: Handle) {
  const s = await state(h);
  const history = await h.fetchHistory();
  const started = new Set<string>();
  for (const e of history.events ?? []) {
    if (e.eventType === EventType.EVENT_TYPE_TIMER_STARTED) started.add(e.timerStartedEventAttributes!.timerId!);
    if (e.eventType === EventType.EVENT_TYPE_TIMER_FIRED || e.eventType === EventType.EVENT_TYPE_TIMER_CANCELED) {
      started.delete((e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes)!.timerId!);
    }
  }
  return { status: s.status, attended: s.attendedMinutes, rate: s.checkInRate, deadlines: [s.activationDeadline, s.useDeadline], pendingTimers: started.size };
}

/** After a restart: the server answers queries for every voucher again (the worker polls again). */
async function backOnline(all: { h: Handle }[]): Promise<void> {
  await until(async () => {
    await Promise.all(all.map(({ h }) => state(h)));
    return true;
  }, 120_000, 'vouchers answer queries after the restart', 500);
}

test('R3.4 R3.9 R3.10 drill: the dev server is stopped (SIGTERM, then SIGKILL) and restarted on the same SQLite file mid-lifecycle; every voucher finishes as an undisturbed run, one disbursement row each', async () => {
  const half = cls.sessionIds.slice(0, SESSIONS / 2);
  const rest = cls.sessionIds.slice(SESSIONS / 2, SESSIONS - 1); // 9 of 10 sessions: rate 90 %

  // ---- vouchers in every phase ---------------------------------------------------------------
  const issued = await Promise.all(Array.from({ length: 4 }, () => issue())); // activation timers pending
  const activated = await Promise.all(Array.from({ length: 4 }, () => issue())); // use-deadline timers pending
  const training = await Promise.all(Array.from({ length: 4 }, () => issue())); // half their check-ins
  const settling = await Promise.all(Array.from({ length: 4 }, () => issue())); // settlement signalled
  const all = [...issued, ...activated, ...training, ...settling];
  await Promise.all(activated.map(({ h }) => activate(h)));
  await Promise.all([...training, ...settling].map(async ({ h }) => {
    await activate(h);
    await enrol(h, cls);
    await checkIns(h, half);
  }));
  await Promise.all(settling.map(async ({ h }) => {
    await checkIns(h, rest);
    await complete(h);
  }));
  const before = await Promise.all([...issued, ...activated, ...training].map(({ h }) => durable(h)));
  // Issued and activated vouchers wait on deadline timers (in training none runs: R3.2 reading).
  for (const d of before.slice(0, issued.length + activated.length)) expect(d.pendingTimers).toBeGreaterThan(0);

  // ---- stop 1: SIGTERM ------------------------------------------------------------------------
  const t1 = Date.now();
  await server.stop('SIGTERM');
  const stop1Ms = Date.now() - t1;
  expect(server.running).toBe(false);
  // The API while Temporal is away: /readyz says so at once; a voucher read ends in 503 + Retry-After
  // (TEMPORAL_UNAVAILABLE, after the native client's own retries), never a 500 — and every read after
  // it answers 503 at once, without calling Temporal, until Temporal answers again (lib/temporal-breaker.ts).
  const hr = await keyFor(db, 'hr', { district: ISSUER });
  const ready = await request(app).get('/readyz');
  expect({ status: ready.status, retryAfter: ready.headers['retry-after'], temporal: ready.body.checks?.temporal === 'ok' }).toEqual({ status: 503, retryAfter: '5', temporal: false });
  const unavailable = { status: 503, code: 'TEMPORAL_UNAVAILABLE', retryAfter: '5' };
  const tRead = Date.now();
  const read = await request(app).get(`/v1/vouchers/${issued[0]!.no}`).set(bearer(hr));
  const apiReadMs = Date.now() - tRead;
  expect({ status: read.status, code: read.body.code, retryAfter: read.headers['retry-after'] }).toEqual(unavailable);
  // The first request waits out core's retries (≈ 9–10 s), not longer.
  expect(apiReadMs).toBeLessThan(15_000);
  const tRead2 = Date.now();
  const read2 = await request(app).get(`/v1/vouchers/${issued[1]!.no}`).set(bearer(hr));
  const apiRead2Ms = Date.now() - tRead2;
  expect({ status: read2.status, code: read2.body.code, retryAfter: read2.headers['retry-after'] }).toEqual(unavailable);
  // The next ones at once: the breaker is open.
  expect(apiRead2Ms).toBeLessThan(3_000);
  const tStart1 = Date.now();
  await server.start();
  const start1Ms = Date.now() - tStart1;
  await backOnline(all);
  const restart1Ms = Date.now() - t1;
  // Everything acknowledged before the stop is still there, timers included.
  expect(await Promise.all([...issued, ...activated, ...training].map(({ h }) => durable(h)))).toEqual(before);
  expect(worker.getState()).toBe('RUNNING');
  // The API's breaker has closed by itself: its reads answer again.
  let apiBackMs = -1;
  for (const t0 = Date.now(); Date.now() - t0 < 60_000; await sleep(200)) {
    const r = await request(app).get(`/v1/vouchers/${issued[0]!.no}`).set(bearer(hr));
    if (r.status === 200) {
      apiBackMs = Date.now() - t0;
      break;
    }
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 503, code: 'TEMPORAL_UNAVAILABLE' });
  }
  expect(apiBackMs).toBeGreaterThanOrEqual(0);

  // ---- progress between the stops, then stop 2: SIGKILL right after acknowledged signals -------
  await Promise.all(issued.map(({ h }) => activate(h)));
  await Promise.all(activated.map(({ h }) => enrol(h, cls)));
  await Promise.all(training.map(async ({ h }) => {
    await checkIns(h, rest);
    await complete(h);
  }));
  await Promise.all(activated.map(({ h }) => checkIns(h, half)));
  const t2 = Date.now();
  const killed = await server.stop('SIGKILL');
  const stop2Ms = Date.now() - t2;
  expect(killed.signal).toBe('SIGKILL');
  const tStart2 = Date.now();
  await server.start();
  const start2Ms = Date.now() - tStart2;
  await backOnline(all);
  const restart2Ms = Date.now() - t2;
  for (const { h } of activated) expect((await state(h)).attendedMinutes).toBe(half.length * MINUTES);
  expect(worker.getState()).toBe('RUNNING');

  // ---- finish the rest ----------------------------------------------------------------------
  await Promise.all(issued.map(async ({ h }) => {
    await enrol(h, cls);
    await checkIns(h, [...half, ...rest]);
    await complete(h);
  }));
  await Promise.all(activated.map(async ({ h }) => {
    await checkIns(h, rest);
    await complete(h);
  }));
  const results = await Promise.all(all.map(({ h }) => h.result()));

  // ---- control group: the same lifecycle, undisturbed ------------------------------------------
  const control = await Promise.all(Array.from({ length: 2 }, () => issue()));
  await Promise.all(control.map(async ({ h }) => {
    await activate(h);
    await enrol(h, controlCls);
    await checkIns(h, [...half, ...rest]);
    await complete(h);
  }));
  const controlResults = await Promise.all(control.map(({ h }) => h.result()));
  const expected = outcome(controlResults[0]!);
  expect(expected).toMatchObject({ status: 'settled', checkInRate: 90, settlement: { outcome: 'approved', amountFen: 150_000, payerDistrict: ISSUER } });
  for (const r of controlResults) expect(outcome(r)).toEqual(expected);

  for (const [i, r] of results.entries()) {
    const no = all[i]!.no;
    expect({ no, ...outcome(r) }).toEqual({ no, ...expected });
    const ledger = await until(async () => {
      const l = await ledgerOf(db, no);
      return l.readModel?.status === 'settled' && l.readModel.revision === (r as VoucherSnapshot).revision ? l : undefined;
    }, 30_000, `read model of ${no}`);
    expect({ no, decisions: ledger.decisions, disbursements: ledger.disbursements, enrolments: ledger.enrolments, quota: ledger.quota }).toEqual({ no, decisions: 1, disbursements: 1, enrolments: 1, quota: 1 });
  }
  const total = await db('disbursements').whereIn('voucher_no', all.map((v) => v.no)).sum<{ s: number }[]>({ s: 'amount_fen' });
  expect(Number(total[0]!.s)).toBe(all.length * 150_000);
  // The search attributes survived too: visibility finds every drill voucher settled.
  const ids = all.map((v) => `'${voucherWorkflowId(v.no)}'`).join(', ');
  const settled = await until(async () => {
    const n = (await client.workflow.count(`WorkflowId IN (${ids}) AND VoucherStatus = 'settled'`)).count;
    return n === all.length ? n : undefined;
  }, 30_000, 'visibility: VoucherStatus = settled');
  expect(settled).toBe(all.length);
  console.log(
    `dev-server drill: SIGTERM stop ${stop1Ms} ms, API read while down → 503 in ${apiReadMs} ms (the next in ${apiRead2Ms} ms), API reads answering ${apiBackMs} ms after the server was back, server answering ${start1Ms} ms after start, ` +
      `every voucher answering queries ${restart1Ms} ms after the stop began; SIGKILL stop ${stop2Ms} ms, server answering ${start2Ms} ms after start, ` +
      `every voucher answering ${restart2Ms} ms after the kill`,
  );
}, 420_000);
