/**
 * Resilience drill: duplicate storms through the HTTP API (a real listening server, keep-alive
 * connections, a real worker on the dev server, real PostgreSQL). 1,000 concurrent check-ins of the same
 * voucher (five sessions, 200 duplicates each) count each session once (R3.10); 1,000 concurrent
 * activations of one voucher activate it once; and, for 20 people with two vouchers each, concurrent
 * activations of both never give anyone two activated vouchers in a year (R3.4: the activation_quota
 * primary key). The trainee's own path is stormed too: 1,000 concurrent QR + geolocated check-ins of one
 * running session count once (the check_ins key). No request gets a 5xx: the losers get 409 / 422
 * (or 429 by design).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createAllActivities } from '../activities';
import { createApp } from '../api/app';
import { API_DB_OPTIONS, createDb, type Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { requestIdActivityInterceptor } from '../lib/request-id';
import { connectClient } from '../lib/temporal-connection';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { stateQuery } from '../workflows/voucher/messages';
import { POLICY_VERSIONS } from '../policy/policy';
import { keyFor } from './helpers/api';
import { ownDatabase, quietDrill, until } from './helpers/drill';
import { devServerEnv, testCodecKeys, testDataConverter, testPii, uniqueTaskQueue } from './helpers/env';
import { makeClass, makeInstitution, makePerson, type ClassFixture, type PersonFixture } from './helpers/fixtures';

const STORM = 1_000;
const DISTRICT = '330602';

let own: Awaited<ReturnType<typeof ownDatabase>>;
let db: Db;
let apiDb: Db;
let env: TestWorkflowEnvironment;
let apiClient: Client;
let worker: Worker;
let running: Promise<void>;
let server: http.Server;
let base: string;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let hr: string;
let institution: string;
let institutionId: string;
let cls: ClassFixture;

beforeAll(async () => {
  quietDrill();
  own = await ownDatabase('dst');
  db = own.db;
  apiDb = createDb(own.url, { ...API_DB_OPTIONS, max: 10 });
  // The server logs every Update it aborts under the storm (the client retries them): keep it quiet.
  env = await devServerEnv({ log: { format: 'json', level: 'never' } });
  const taskQueue = uniqueTaskQueue('drill-storm');
  const bundle = process.env.TEST_WORKFLOW_BUNDLE;
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') }),
    activities: createAllActivities({ db, pii: testPii }),
    dataConverter: testDataConverter,
    interceptors: { activity: [requestIdActivityInterceptor] },
  });
  running = worker.run();
  const logger = createLogger('error');
  logger.error = ((o: { err?: unknown }) => void unhandled.push(String((o?.err as Error)?.stack ?? o).slice(0, 600))) as never;
  logger.warn = ((o: { err?: unknown }) => void unhandled.push(`warn: ${String((o?.err as Error)?.message)} / cause: ${String(((o?.err as Error)?.cause as Error)?.message)} code ${String(((o?.err as Error)?.cause as { code?: number })?.code)}`.slice(0, 600))) as never;
  // The API's own client, built as api/main.ts builds it: its shorter retry budget
  // (lib/temporal-connection.ts) must still carry the storm without a 5xx.
  apiClient = await connectClient(env.address, 'default', testCodecKeys);
  const app = createApp({ db: apiDb, client: apiClient, pii: testPii, logger, taskQueue, rateLimitPerMinute: 1_000_000 });
  server = app.listen(0, '127.0.0.1');
  // Longer than any pause between the drill's steps: otherwise the server may close a kept-alive socket
  // (Node's default: after 5 s idle) just as the agent reuses it, and the request fails with ECONNRESET.
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hr = await keyFor(db, 'hr', { district: DISTRICT });
  institutionId = await makeInstitution(db);
  institution = await keyFor(db, 'institution', { institutionId });
  cls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, sessions: 10, minutes: 90, capacity: 100 });
}, 180_000);

afterAll(async () => {
  agent.destroy();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running?.catch(() => undefined);
  await apiClient?.connection.close().catch(() => undefined);
  await env?.teardown();
  await apiDb?.destroy();
  await own?.drop();
});

interface Answer {
  status: number;
  body: { code?: string; status?: string; [k: string]: unknown };
}

/** One HTTP request over the keep-alive agent. */
function call(method: string, path: string, key: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      `${base}${path}`,
      { method, agent, headers: { authorization: `Bearer ${key}`, ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: Answer['body'] = {};
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`timeout ${method} ${path}`)));
    if (data) req.write(data);
    req.end();
  });
}

/** Tally of answers by status and problem code, e.g. { '202': 640, '409 VOUCHER_NOT_IN_TRAINING': 3 }. */
function tally(answers: Answer[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const a of answers) {
    const k = a.status >= 400 ? `${a.status} ${a.body.code ?? ''}`.trim() : String(a.status);
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}
const fiveXx = (answers: Answer[]) => answers.filter((a) => a.status >= 500).map((a) => ({ status: a.status, ...a.body, unhandled: unhandled.slice(-3) }));
/** Errors the API logged as unhandled (a 500), shown when a storm gets any 5xx. */
const unhandled: string[] = [];

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** HR issues a general voucher through the API; the holder claims it when the voucher awaits a claim (R2.7). */
async function issued(person: PersonFixture, holder: string): Promise<string> {
  const res = await call('POST', '/v1/vouchers', hr, { type: 'general', idNumber: person.idNumber });
  expect(res.status).toBe(201);
  const no = res.body.voucherNo as string;
  if (res.body.claimDeadline) {
    const claim = await call('POST', `/v1/vouchers/${no}/claim`, holder, { channel: 'alipay', name: person.name, idNumber: person.idNumber, phone: person.phone });
    expect(claim.status).toBeLessThan(300);
  }
  return no;
}

async function holderOf(person: PersonFixture): Promise<string> {
  return keyFor(db, 'holder', { personRef: person.personRef });
}

const state = (no: string) => env.client.workflow.getHandle(voucherWorkflowId(no)).query(stateQuery);

test('R3.10 drill: 1,000 concurrent duplicate check-ins of one voucher count each session once; the rate is right; no 5xx', async () => {
  const person = await makePerson(db, testPii);
  const holder = await holderOf(person);
  const no = await issued(person, holder);
  expect((await call('POST', `/v1/vouchers/${no}/activate`, holder, { channel: 'alipay' })).status).toBe(200);
  expect((await call('POST', `/v1/vouchers/${no}/enrol`, institution, { classId: cls.classId, review: { passed: true } })).status).toBe(200);

  const sessions = cls.sessionIds.slice(0, 5); // 5 of 10 sessions → 50 %
  const t0 = Date.now();
  const answers = await Promise.all(shuffle(Array.from({ length: STORM }, (_, k) => sessions[k % sessions.length]!)).map((sessionId) => call('POST', `/v1/vouchers/${no}/check-ins`, institution, { sessionId })));
  const took = Date.now() - t0;
  expect(fiveXx(answers)).toEqual([]);
  for (const a of answers) expect([202, 409, 429]).toContain(a.status);
  const accepted = answers.filter((a) => a.status === 202);
  // Every session got through at least once; the API marks later duplicates as such.
  expect(new Set(accepted.map((a) => a.body.sessionId))).toEqual(new Set(sessions));
  expect(accepted.some((a) => a.body.duplicate === true)).toBe(true);

  // The workflow counted each session once (signals are deduplicated by session, R3.10).
  const s = await until(async () => {
    const x = await state(no);
    return x.attendedMinutes === 5 * 90 ? x : undefined;
  }, 30_000, 'check-ins counted');
  expect(s.sessions.filter((x) => x.verifiedMinutes > 0).map((x) => x.sessionId).sort()).toEqual(sessions);
  expect({ attendedMinutes: s.attendedMinutes, totalMinutes: s.totalMinutes, checkInRate: s.checkInRate }).toEqual({ attendedMinutes: 450, totalMinutes: 900, checkInRate: 50 });
  // Still the same a moment later (nothing trickles in twice), and the read model agrees.
  const row = await until(async () => {
    const r = await db('vouchers').where({ voucher_no: no }).first();
    return r && Number(r.check_in_rate) === 50 && r.revision === s.revision ? r : undefined;
  }, 30_000, 'read model at 50 %');
  expect(Number(row.attended_minutes)).toBe(450);
  expect((await state(no)).attendedMinutes).toBe(450);
  const again = await call('POST', `/v1/vouchers/${no}/check-ins`, institution, { sessionId: sessions[0] });
  expect(again).toMatchObject({ status: 202, body: { counted: false, duplicate: true } });
  console.log(`storm: ${STORM} check-ins in ${took} ms → ${JSON.stringify(tally(answers))}; ${accepted.filter((a) => a.body.counted).length} signalled, the workflow kept 5`);
}, 180_000);

test('R3.10 drill: 1,000 concurrent QR + geolocated check-ins by the trainee for one running session count once; no 5xx', async () => {
  // A class whose first session is running now; the trainee is on its roster (R4.2: it has started).
  const running = await makeClass(db, { institutionId, firstStart: Date.now() - 10 * 60_000, sessions: 4, minutes: 90 });
  const person = await makePerson(db, testPii);
  await db('class_roster').insert({ class_id: running.classId, person_ref: person.personRef });
  const holder = await holderOf(person);
  const no = await issued(person, holder);
  expect((await call('POST', `/v1/vouchers/${no}/activate`, holder, { channel: 'alipay' })).status).toBe(200);
  expect((await call('POST', `/v1/vouchers/${no}/enrol`, institution, { classId: running.classId, review: { passed: true } })).status).toBe(200);
  // A code is valid for its policy window (60 s): fetch one with at least 15 s of it left, so the first
  // of the storm's requests is never the one that finds it expired.
  const windowMs = POLICY_VERSIONS[0]!.qrTokenWindowSeconds * 1000;
  const left = windowMs - (Date.now() % windowMs);
  if (left < 15_000) await new Promise((r) => setTimeout(r, left + 50));
  const qr = await call('GET', `/v1/classes/${running.classId}/sessions/S01/qr`, institution);
  expect(qr.status).toBe(200);
  const body = { voucherNo: no, sessionId: 'S01', token: qr.body.token, lat: 30.0005, lng: 120.5805 };

  const t0 = Date.now();
  const answers = await Promise.all(Array.from({ length: STORM }, () => call('POST', '/v1/check-ins', holder, body)));
  const took = Date.now() - t0;
  expect(fiveXx(answers)).toEqual([]);
  expect(answers.filter((a) => a.status === 202)).toHaveLength(1);
  // The rest: the same code again, or the session already counted (or, past a minute, an expired code).
  for (const a of answers) if (a.status !== 202) expect(['409 QR_TOKEN_REPLAYED', '409 SESSION_ALREADY_CHECKED_IN', '422 QR_TOKEN_EXPIRED', '429 RATE_LIMITED']).toContain(`${a.status} ${a.body.code}`);
  expect(await db('check_ins').where({ voucher_no: no, session_id: 'S01' })).toHaveLength(1);
  expect(await db('check_in_attempts').where({ voucher_no: no, verdict: 'accepted' })).toHaveLength(1);
  expect(await db('check_in_attempts').where({ voucher_no: no })).toHaveLength(STORM); // every attempt recorded once
  const s = await until(async () => {
    const x = await state(no);
    return x.attendedMinutes === 90 ? x : undefined;
  }, 30_000, 'QR check-in counted');
  expect({ attendedMinutes: s.attendedMinutes, totalMinutes: s.totalMinutes, checkInRate: s.checkInRate }).toEqual({ attendedMinutes: 90, totalMinutes: 360, checkInRate: 25 });
  console.log(`storm: ${STORM} QR check-ins in ${took} ms → ${JSON.stringify(tally(answers))}`);
}, 180_000);

test('R3.4 drill: 1,000 concurrent activations of one voucher activate it once; one quota row; no 5xx', async () => {
  const person = await makePerson(db, testPii);
  const holder = await holderOf(person);
  const no = await issued(person, holder);
  const t0 = Date.now();
  const answers = await Promise.all(Array.from({ length: STORM }, () => call('POST', `/v1/vouchers/${no}/activate`, holder, { channel: 'alipay' })));
  const took = Date.now() - t0;
  expect(fiveXx(answers)).toEqual([]);
  const won = answers.filter((a) => a.status === 200);
  expect(won).toHaveLength(1);
  expect(won[0]!.body.status).toBe('activated');
  for (const a of answers) if (a.status !== 200) expect([409, 422, 429]).toContain(a.status);
  expect((await state(no)).status).toBe('activated');
  expect(await db('activation_quota').where({ person_ref: person.personRef })).toHaveLength(1);
  console.log(`storm: ${STORM} activations in ${took} ms → ${JSON.stringify(tally(answers))}`);
}, 180_000);

test('R3.4 drill: 20 people × two vouchers activated concurrently (5 requests per voucher) — each person gets exactly one activated voucher; no 5xx', async () => {
  const persons: { person: PersonFixture; holder: string }[] = [];
  for (let k = 0; k < 20; k++) {
    const person = await makePerson(db, testPii); // one at a time: makePerson draws random ID serials
    persons.push({ person, holder: await holderOf(person) });
  }
  const people = await Promise.all(persons.map(async ({ person, holder }) => {
    // Both vouchers issued at the same moment: issuance itself has no per-person limit.
    const nos = await Promise.all([issued(person, holder), issued(person, holder)]);
    return { person, holder, nos };
  }));
  const t0 = Date.now();
  const answers = await Promise.all(
    people.map(async ({ holder, nos }) => {
      const requests = shuffle(nos.flatMap((no) => Array.from({ length: 5 }, () => no)));
      return { nos, answers: await Promise.all(requests.map(async (no) => ({ no, ...(await call('POST', `/v1/vouchers/${no}/activate`, holder, { channel: 'wechat' })) }))) };
    }),
  );
  const took = Date.now() - t0;
  const flat = answers.flatMap((x) => x.answers);
  expect(fiveXx(flat)).toEqual([]);
  for (const [i, { nos, answers: as }] of answers.entries()) {
    const { person } = people[i]!;
    const wins = as.filter((a) => a.status === 200);
    expect({ person: i, wins: wins.length }).toEqual({ person: i, wins: 1 });
    const statuses = await Promise.all(nos.map(async (no) => (await state(no)).status));
    expect(statuses.filter((x) => x === 'activated')).toHaveLength(1);
    const quota = await db('activation_quota').where({ person_ref: person.personRef });
    expect(quota.map((q: { voucher_no: string }) => q.voucher_no)).toEqual([wins[0]!.no]);
    // The loser was refused by the quota (R3.4) or, while the winner's Update ran, as busy (409).
    const loser = nos.find((no) => no !== wins[0]!.no)!;
    for (const a of as.filter((x) => x.no === loser)) expect(['422 ANNUAL_QUOTA_USED', '409 ACTION_IN_PROGRESS', '429 RATE_LIMITED']).toContain(`${a.status} ${a.body.code}`);
    expect(as.filter((x) => x.no === loser).some((a) => a.body.code === 'ANNUAL_QUOTA_USED')).toBe(true);
  }
  console.log(`storm: ${flat.length} activations of ${people.length * 2} vouchers in ${took} ms → ${JSON.stringify(tally(flat))}`);
}, 180_000);
