/**
 * Scale-out on one machine (docs/SCALING.md): TWO worker processes (`npx tsx workers/main.ts`) and TWO
 * API processes (`npx tsx api/main.ts`) on one Temporal dev server, one task queue and one PostgreSQL
 * database, exactly as the compose stack or a Kubernetes deployment would run replicas. Vouchers are
 * driven through both APIs alternately — every request goes to the other API than the one before —
 * from issue to settlement. Every voucher must end correct exactly once (settled, full attendance, one
 * decision, one disbursement row, one enrolment, no duplicate anywhere), and BOTH workers must have
 * done work: their identities appear on workflow- and activity-task events of the histories, and each
 * worker's own Prometheus endpoint counts workflow tasks it executed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPrincipal } from '../api/auth';
import type { Db } from '../db/connection';
import { freePort } from '../lib/postgres';
import { VOUCHER_TASK_QUEUE, voucherWorkflowId } from '../workflows/voucher/contract';
import { devServerEnv, quietRuntime, testDb, testPii } from './helpers/env';
import { pollerIdentities, until } from './helpers/drill';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation, type ClassFixture, type PersonFixture } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
/** The test client's codec keys (test/helpers/env.ts) and testPii's keys, handed to every process. */
const CODEC_KEYS = `t1:${'3'.repeat(64)}`;
const PERSON_REF_KEY = '1'.repeat(64);
const PII_KEY = '2'.repeat(64);
const DISTRICT = '330602';
const VOUCHERS = Number(process.env.SCALE_OUT_VOUCHERS ?? 24);
const SESSIONS = 4;
const MINUTES = 90;
const IN_FLIGHT = 8;

jest.setTimeout(10 * 60_000);

let env: TestWorkflowEnvironment;
let db: Db;
const children: ChildProcess[] = [];
const apis: { port: number; child: ChildProcess }[] = [];
const workers: { metrics: string; child: ChildProcess }[] = [];
let cls: ClassFixture;
let occupationCode: string;
let hrKey: string;
let instKey: string;

function spawnProcess(entry: string, extraEnv: Record<string, string>): ChildProcess {
  const child = spawn('npx', ['tsx', entry], {
    cwd: ROOT,
    detached: true, // its own process group: npx, tsx and node stop together
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: process.env.TEST_DATABASE_URL,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_CODEC_KEYS: CODEC_KEYS,
      PERSON_REF_KEY,
      PII_KEY,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...extraEnv,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (code && code !== 0) console.error(`${entry} exited ${code} ${signal ?? ''}\n${stderr}`);
  });
  children.push(child);
  return child;
}

function stopGroup(c: ChildProcess): Promise<void> {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  try {
    process.kill(-c.pid, 'SIGTERM');
  } catch {
    return Promise.resolve();
  }
  const t = setTimeout(() => {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 20_000);
  return exited.finally(() => clearTimeout(t));
}



beforeAll(async () => {
  quietRuntime();
  env = await devServerEnv();
  db = testDb();
  occupationCode = uniqueOccupation();
  const institutionId = await makeInstitution(db, 'approved', DISTRICT);
  cls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: SESSIONS, minutes: MINUTES, capacity: VOUCHERS + 5 });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: 150_000, fundingSource: 'ui_employment_promotion' });
  hrKey = (await createPrincipal(db, { role: 'hr', district: DISTRICT })).key;
  instKey = (await createPrincipal(db, { role: 'institution', institutionId })).key;

  for (let i = 0; i < 2; i++) {
    const metrics = `127.0.0.1:${await freePort()}`;
    workers.push({ metrics, child: spawnProcess('workers/main.ts', { WORKER_METRICS_ADDRESS: metrics }) });
    const port = await freePort();
    apis.push({ port, child: spawnProcess('api/main.ts', { PORT: String(port) }) });
  }
  // Both APIs answer, and two distinct workers poll the one task queue for workflow and activity tasks.
  for (const a of apis) await until(async () => ((await fetch(`http://127.0.0.1:${a.port}/healthz`)).ok ? true : undefined), 180_000, `API on ${a.port}`);
  await until(async () => ((await pollerIdentities(env.client, 'workflow')).length >= 2 ? true : undefined), 180_000, 'two workflow pollers');
  await until(async () => ((await pollerIdentities(env.client, 'activity')).length >= 2 ? true : undefined), 60_000, 'two activity pollers');
}, 300_000);

afterAll(async () => {
  await Promise.all(children.map(stopGroup));
  await env?.teardown();
  await db?.destroy();
});

/** Each call goes to the other API than the call before. */
let turn = 0;
const calls = [0, 0];
async function call(method: 'GET' | 'POST', p: string, key: string, body?: unknown): Promise<{ status: number; body: any }> {
  const i = turn++ % 2;
  calls[i]!++;
  const res = await fetch(`http://127.0.0.1:${apis[i]!.port}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function expectStatus(r: Promise<{ status: number; body: any }>, ok: number[], what: string) {
  const x = await r;
  if (!ok.includes(x.status)) throw new Error(`${what}: HTTP ${x.status} ${JSON.stringify(x.body)}`);
  return x.body;
}

/** One voucher from issue to settlement, every step through the API (alternating between the two). */
async function lifecycle(person: PersonFixture): Promise<string> {
  const holderKey = (await createPrincipal(db, { role: 'holder', personRef: person.personRef })).key;
  const issued = await expectStatus(call('POST', '/v1/vouchers', hrKey, { type: 'directed', idNumber: person.idNumber, occupationCode }), [201], 'issue');
  const no: string = issued.voucherNo;
  // R2.7: claiming through a channel (a no-op record for vouchers without a claim step).
  await expectStatus(call('POST', `/v1/vouchers/${no}/claim`, holderKey, { channel: 'zlb', name: person.name, idNumber: person.idNumber, phone: person.phone }), [200, 201], `claim ${no}`);
  const act = await expectStatus(call('POST', `/v1/vouchers/${no}/activate`, holderKey, { channel: 'alipay' }), [200], `activate ${no}`);
  expect(act.status).toBe('activated');
  const enr = await expectStatus(call('POST', `/v1/vouchers/${no}/enrol`, instKey, { classId: cls.classId, review: { passed: true } }), [200], `enrol ${no}`);
  expect(enr.status).toBe('in_training');
  for (const sessionId of cls.sessionIds) {
    await expectStatus(call('POST', `/v1/vouchers/${no}/check-ins`, instKey, { sessionId }), [202], `check-in ${no} ${sessionId}`);
  }
  // A repeated check-in through the other API: never counted twice.
  await expectStatus(call('POST', `/v1/vouchers/${no}/check-ins`, instKey, { sessionId: cls.sessionIds[0] }), [202], `repeat check-in ${no}`);
  await expectStatus(call('POST', `/v1/vouchers/${no}/complete`, instKey, { assessmentPassed: true }), [202], `complete ${no}`);
  return no;
}

test(`two workers and two APIs on one task queue: ${VOUCHERS} vouchers each settle exactly once, and both workers work`, async () => {
  const persons: PersonFixture[] = [];
  for (let i = 0; i < VOUCHERS; i++) persons.push(await makePerson(db, testPii));
  const nos: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < persons.length) nos.push(await lifecycle(persons[next++]!));
    }),
  );
  expect(calls[0]).toBeGreaterThan(0);
  expect(calls[1]).toBeGreaterThan(0);

  // Every voucher ends settled with full attendance (the workflow's own result).
  for (const no of nos) {
    const end = await env.client.workflow.getHandle(voucherWorkflowId(no)).result();
    expect({ no, status: end.status, attended: end.attendedMinutes }).toEqual({ no, status: 'settled', attended: SESSIONS * MINUTES });
  }

  // Exactly once in PostgreSQL: one decision, one disbursement row, one enrolment per voucher, nothing else.
  const per = async (table: string) =>
    (await db(table).whereIn('voucher_no', nos).select('voucher_no').count<{ voucher_no: string; n: string }[]>({ n: '*' }).groupBy('voucher_no')).map((r) => [r.voucher_no, Number(r.n)]);
  const once = nos.map((no) => [no, 1]).sort();
  expect((await per('disbursements')).sort()).toEqual(once);
  expect((await per('subsidy_decisions')).sort()).toEqual(once);
  expect((await per('enrolments')).sort()).toEqual(once);
  const approved = await db('disbursements').whereIn('voucher_no', nos).where({ amount_fen: 150_000 }).count<{ n: string }[]>({ n: '*' });
  expect(Number(approved[0]!.n)).toBe(VOUCHERS);
  // The read model reached each workflow's final state.
  const rm = await db('vouchers').whereIn('voucher_no', nos).where({ status: 'settled', attended_minutes: SESSIONS * MINUTES }).count<{ n: string }[]>({ n: '*' });
  expect(Number(rm[0]!.n)).toBe(VOUCHERS);

  // Both workers did work: identities on workflow-task and activity-task events of the histories.
  const pollers = await pollerIdentities(env.client, 'workflow');
  const byIdentity = new Map<string, { workflowTasks: number; activityTasks: number; vouchers: Set<string> }>();
  const EventType = temporal.api.enums.v1.EventType;
  for (const no of nos) {
    const h = await env.client.workflow.getHandle(voucherWorkflowId(no)).fetchHistory();
    for (const e of h.events ?? []) {
      const identity =
        e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
          ? e.workflowTaskCompletedEventAttributes?.identity
          : e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            ? e.activityTaskStartedEventAttributes?.identity
            : undefined;
      if (!identity) continue;
      const s = byIdentity.get(identity) ?? { workflowTasks: 0, activityTasks: 0, vouchers: new Set<string>() };
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) s.workflowTasks++;
      else s.activityTasks++;
      s.vouchers.add(no);
      byIdentity.set(identity, s);
    }
  }
  // eslint-disable-next-line no-console
  console.log(
    `scale-out: API calls ${calls.join(' / ')}; work by worker identity: ${JSON.stringify(
      [...byIdentity].map(([id, s]) => ({ id, workflowTasks: s.workflowTasks, activityTasks: s.activityTasks, vouchers: s.vouchers.size })),
    )}; pollers ${JSON.stringify(pollers)}`,
  );
  const workedIdentities = [...byIdentity.keys()];
  expect(workedIdentities.length).toBe(2);
  expect(new Set(workedIdentities)).toEqual(new Set(pollers.filter((p) => workedIdentities.includes(p))));
  for (const s of byIdentity.values()) {
    expect(s.workflowTasks).toBeGreaterThan(0);
    expect(s.activityTasks).toBeGreaterThan(0);
  }

  // ...and each worker's own Prometheus endpoint counts workflow tasks it executed.
  for (const w of workers) {
    const text = await (await fetch(`http://${w.metrics}/metrics`)).text();
    const executed = text
      .split('\n')
      .filter((l) => /^temporal_workflow_task_execution_latency\w*_count\b/.test(l))
      .reduce((a, l) => a + Number(l.trim().split(/\s+/).pop()), 0);
    expect(executed).toBeGreaterThan(0);
  }
});
