/**
 * Walks every cell of the roles × endpoints table in docs/SECURITY.md: ✓ cells succeed for a principal
 * in scope; every other cell answers exactly the status the table gives (403 or 404) and changes nothing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Express } from 'express';
import { createApp } from '../api/app';
import type { Role } from '../api/auth';
import type { Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { bearer, keyFor } from './helpers/api';
import { testCodecKeys, testDb, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeClass, makeInstitution, makePerson, uniqueOccupation } from './helpers/fixtures';

const ROLES: Role[] = ['hr', 'institution', 'holder', 'finance', 'assessor', 'operator'];
const DISTRICT = '330604';
const DAY = 86_400_000;

const table = readFileSync(path.join(__dirname, '..', 'docs', 'SECURITY.md'), 'utf8')
  .split('\n')
  .filter((l) => /^\| `(GET|POST|PUT|PATCH|DELETE) /.test(l))
  .map((l) => {
    const cells = l.split('|').slice(1, -1).map((c) => c.trim());
    const endpoint = cells[0]!.replace(/`/g, '');
    return { endpoint, cells: Object.fromEntries(ROLES.map((r, i) => [r, cells[i + 1]!])) as Record<Role, string> };
  });

let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let app: Express;
/** The API's clock runs this far ahead of the wall clock (training scenarios move into a session). */
let clockOffset = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
  db = testDb();
  const taskQueue = uniqueTaskQueue('matrix');
  worker = await testWorker(env, db, taskQueue);
  running = worker.run();
  app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, codecKeys: testCodecKeys, rateLimitPerMinute: 100_000, now: () => Date.now() + clockOffset });
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

/** A world where every role has an in-scope principal for one voucher, in a given state. */
async function world(state: 'issued' | 'activated' | 'in_training') {
  // Paying unemployment insurance in the HR principal's district: the link R2.4 requires to issue there.
  const person = await makePerson(db, testPii, { uiDistrict: DISTRICT });
  const occ = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  const firstStart = Math.max(Date.now(), await env.currentTimeMs()) + 7 * DAY;
  const cls = await makeClass(db, { institutionId, firstStart, occupationCode: occ, sessions: 3 });
  // Institutions in the states the approval and re-approval rows need (R4.1, R4.4).
  const pendingInstitutionId = await makeInstitution(db, 'pending');
  const rectificationInstitutionId = await makeInstitution(db, 'rectification');
  const keys: Record<Role, string> = {
    hr: await keyFor(db, 'hr', { district: DISTRICT }),
    institution: await keyFor(db, 'institution', { institutionId }),
    holder: await keyFor(db, 'holder', { personRef: person.personRef }),
    finance: await keyFor(db, 'finance', { district: DISTRICT }),
    assessor: await keyFor(db, 'assessor'),
    operator: await keyFor(db, 'operator'),
  };
  const issued = await request(app).post('/v1/vouchers').set(bearer(keys.hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode: occ });
  const no = issued.body.voucherNo as string;
  if (state !== 'issued') await request(app).post(`/v1/vouchers/${no}/activate`).set(bearer(keys.holder)).send({}).expect(200);
  if (state === 'in_training') await request(app).post(`/v1/vouchers/${no}/enrol`).set(bearer(keys.institution)).send({ classId: cls.classId, review: { passed: true } }).expect(200);
  // The read model is written by an activity: wait until it shows the state, so `unchanged` reads a settled value.
  for (let i = 0; i < 200 && (await db('vouchers').where({ voucher_no: no }).first())?.status !== state; i++) await new Promise((r) => setTimeout(r, 50));
  return { person, keys, no, cls, firstStart, pendingInstitutionId, rectificationInstitutionId, extra: {} as Record<string, string> };
}

type World = Awaited<ReturnType<typeof world>>;
interface Cell {
  state: 'issued' | 'activated' | 'in_training';
  call: (w: World, key: string) => request.Test;
  /** Brings the world to where the ✓ call can succeed (runs before `unchanged` is read). */
  prepare?: (w: World) => Promise<void>;
  /** What must not have changed after a refused call. */
  unchanged?: (w: World) => Promise<unknown>;
}

const state = async (w: World) => (await db('vouchers').where({ voucher_no: w.no }).first())?.status;
const approvals = async (institutionId: string) => Number((await db('institution_approvals').where({ institution_id: institutionId }).count<{ n: string }[]>({ n: '*' }))[0]!.n);
const changes = async (classId: string) => Number((await db('class_changes').where({ class_id: classId }).count<{ n: string }[]>({ n: '*' }))[0]!.n);
const checkIns = async (voucherNo: string) => Number((await db('check_ins').where({ voucher_no: voucherNo }).count<{ n: string }[]>({ n: '*' }))[0]!.n);
const CELLS: Record<string, Cell> = {
  'POST /v1/vouchers': {
    state: 'issued',
    call: (w, key) => request(app).post('/v1/vouchers').set(bearer(key)).send({ type: 'directed', idNumber: w.person.idNumber, occupationCode: '1-01' }),
    unchanged: async () => Number((await db('voucher_counters').where({ district: DISTRICT }).first())?.last ?? 0),
  },
  'GET /v1/vouchers': { state: 'in_training', call: (_w, key) => request(app).get('/v1/vouchers').set(bearer(key)) },
  'GET /v1/vouchers/{no}': { state: 'in_training', call: (w, key) => request(app).get(`/v1/vouchers/${w.no}`).set(bearer(key)) },
  'POST /v1/vouchers/{no}/activate': { state: 'issued', call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/activate`).set(bearer(key)).send({}), unchanged: state },
  'POST /v1/vouchers/{no}/enrol': {
    state: 'activated',
    call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/enrol`).set(bearer(key)).send({ classId: w.cls.classId, review: { passed: true } }),
    unchanged: state,
  },
  'POST /v1/vouchers/{no}/check-ins': {
    state: 'in_training',
    call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/check-ins`).set(bearer(key)).send({ sessionId: w.cls.sessionIds[0] }),
    unchanged: async (w) => (await db('vouchers').where({ voucher_no: w.no }).first())?.attended_minutes,
  },
  'POST /v1/vouchers/{no}/complete': { state: 'in_training', call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/complete`).set(bearer(key)).send({ assessmentPassed: true }), unchanged: state },
  'POST /v1/vouchers/{no}/revoke': { state: 'issued', call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/revoke`).set(bearer(key)).send({ reason: 'matrix' }), unchanged: state },
  'POST /codec/decode': { state: 'issued', call: (_w, key) => request(app).post('/codec/decode').set(bearer(key)).send({ payloads: [] }) },

  // ---- training delivery (R3.5, R3.6, R3.10, R4.1, R4.2, R4.4) ----
  'POST /v1/institutions': {
    state: 'issued',
    call: (_w, key) => request(app).post('/v1/institutions').set(bearer(key)).send({ name: 'Matrix Training School', district: '330604' }),
    unchanged: async () => Number((await db('institutions').where({ name: 'Matrix Training School' }).count<{ n: string }[]>({ n: '*' }))[0]!.n),
  },
  'GET /v1/institutions/{id}': { state: 'issued', call: (w, key) => request(app).get(`/v1/institutions/${w.cls.institutionId}`).set(bearer(key)) },
  'POST /v1/institutions/{id}/approve': {
    state: 'issued',
    call: (w, key) => request(app).post(`/v1/institutions/${w.pendingInstitutionId}/approve`).set(bearer(key)).send({}),
    unchanged: async (w) => [(await db('institutions').where({ id: w.pendingInstitutionId }).first())?.status, await approvals(w.pendingInstitutionId)],
  },
  'POST /v1/institutions/{id}/strikes': {
    state: 'issued',
    call: (w, key) => request(app).post(`/v1/institutions/${w.cls.institutionId}/strikes`).set(bearer(key)).send({ kind: 'quality', evidence: 'matrix inspection' }),
    unchanged: async (w) => Number((await db('institution_strikes').where({ institution_id: w.cls.institutionId }).count<{ n: string }[]>({ n: '*' }))[0]!.n),
  },
  'GET /v1/institutions/{id}/strikes': { state: 'issued', call: (w, key) => request(app).get(`/v1/institutions/${w.cls.institutionId}/strikes`).set(bearer(key)) },
  'POST /v1/institutions/{id}/reapprove': {
    state: 'issued',
    call: (w, key) => request(app).post(`/v1/institutions/${w.rectificationInstitutionId}/reapprove`).set(bearer(key)).send({}),
    unchanged: async (w) => approvals(w.rectificationInstitutionId),
  },
  'POST /v1/classes': {
    state: 'issued',
    call: (w, key) => {
      const start = Date.now() + 3 * DAY;
      return request(app)
        .post('/v1/classes')
        .set(bearer(key))
        .send({
          occupationCode: w.cls.occupationCode,
          level: '4',
          trainingKind: 'certificate',
          mode: 'online',
          capacity: 10,
          sessions: [{ sessionId: 'S01', startsAt: new Date(start).toISOString(), endsAt: new Date(start + 90 * 60_000).toISOString(), minutes: 90 }],
          roster: [w.person.idNumber],
        });
    },
    unchanged: async (w) => Number((await db('classes').where({ occupation_code: w.cls.occupationCode }).count<{ n: string }[]>({ n: '*' }))[0]!.n),
  },
  'GET /v1/classes': { state: 'issued', call: (w, key) => request(app).get('/v1/classes').query({ occupationCode: w.cls.occupationCode }).set(bearer(key)) },
  'GET /v1/classes/{classId}': { state: 'issued', call: (w, key) => request(app).get(`/v1/classes/${w.cls.classId}`).set(bearer(key)) },
  'PUT /v1/classes/{classId}/roster': {
    state: 'issued',
    call: (w, key) => request(app).put(`/v1/classes/${w.cls.classId}/roster`).set(bearer(key)).send({ roster: [w.person.idNumber] }),
    unchanged: async (w) => [await changes(w.cls.classId), Number((await db('class_roster').where({ class_id: w.cls.classId }).count<{ n: string }[]>({ n: '*' }))[0]!.n)],
  },
  'PUT /v1/classes/{classId}/sessions': {
    state: 'issued',
    call: (w, key) => {
      const start = w.firstStart + DAY;
      return request(app)
        .put(`/v1/classes/${w.cls.classId}/sessions`)
        .set(bearer(key))
        .send({ sessions: [{ sessionId: 'S01', startsAt: new Date(start).toISOString(), endsAt: new Date(start + 60 * 60_000).toISOString(), minutes: 60 }] });
    },
    unchanged: async (w) => [await changes(w.cls.classId), await db('class_sessions').where({ class_id: w.cls.classId }).orderBy('session_id').select('session_id', 'starts_at', 'minutes')],
  },
  'GET /v1/classes/{classId}/sessions/{sessionId}/qr': {
    state: 'issued',
    call: (w, key) => request(app).get(`/v1/classes/${w.cls.classId}/sessions/${w.cls.sessionIds[0]}/qr`).set(bearer(key)),
  },
  'POST /v1/check-ins': {
    state: 'in_training',
    // Five minutes into the first session, at the venue, with the code the classroom shows.
    prepare: async (w) => {
      clockOffset = w.firstStart + 5 * 60_000 - Date.now();
      const qr = await request(app).get(`/v1/classes/${w.cls.classId}/sessions/${w.cls.sessionIds[0]}/qr`).set(bearer(w.keys.institution)).expect(200);
      w.extra.token = qr.body.token as string;
    },
    call: (w, key) =>
      request(app).post('/v1/check-ins').set(bearer(key)).send({ voucherNo: w.no, sessionId: w.cls.sessionIds[0], token: w.extra.token, lat: 30.0, lng: 120.58 }),
    unchanged: async (w) => checkIns(w.no),
  },
  'POST /v1/classes/{classId}/sessions/{sessionId}/learning-time': {
    state: 'in_training',
    // The class is taught online; the first session has opened.
    prepare: async (w) => {
      await db('classes').where({ id: w.cls.classId }).update({ mode: 'online', venue_lat: null, venue_lng: null });
      clockOffset = w.firstStart + 5 * 60_000 - Date.now();
    },
    call: (w, key) => request(app).post(`/v1/classes/${w.cls.classId}/sessions/${w.cls.sessionIds[0]}/learning-time`).set(bearer(key)).send({ voucherNo: w.no, minutes: 60 }),
    unchanged: async (w) => checkIns(w.no),
  },
  'POST /v1/classes/{classId}/completion': {
    state: 'in_training',
    prepare: async () => {
      clockOffset = 10 * DAY; // after the last session
    },
    call: (w, key) => request(app).post(`/v1/classes/${w.cls.classId}/completion`).set(bearer(key)).send({ results: [{ voucherNo: w.no, assessmentPassed: true }] }),
    unchanged: async (w) => Number((await db('class_completions').where({ class_id: w.cls.classId }).count<{ n: string }[]>({ n: '*' }))[0]!.n),
  },
  'GET /v1/classes/{classId}/completion': {
    state: 'in_training',
    prepare: async (w) => {
      clockOffset = 10 * DAY;
      await request(app).post(`/v1/classes/${w.cls.classId}/completion`).set(bearer(w.keys.institution)).send({ results: [{ voucherNo: w.no, assessmentPassed: true }] }).expect(202);
    },
    call: (w, key) => request(app).get(`/v1/classes/${w.cls.classId}/completion`).set(bearer(key)),
  },
};

test('the table lists every endpoint the matrix knows, and every row has a scenario', () => {
  expect(table.map((r) => r.endpoint).sort()).toEqual(Object.keys(CELLS).sort());
});

const cases = table.flatMap((row) => ROLES.map((role) => [row.endpoint, role, row.cells[role]] as const));
test.each(cases)('%s as %s: %s', async (endpoint, role, expected) => {
  const cell = CELLS[endpoint]!;
  clockOffset = 0;
  const w = await world(cell.state);
  await cell.prepare?.(w);
  const before = cell.unchanged ? await cell.unchanged(w) : undefined;
  const res = await cell.call(w, w.keys[role]);
  if (expected.startsWith('✓')) {
    expect({ endpoint, role, status: res.status < 300 }).toEqual({ endpoint, role, status: true });
  } else {
    expect({ endpoint, role, status: res.status }).toEqual({ endpoint, role, status: Number(expected) });
    if (cell.unchanged) expect(await cell.unchanged(w)).toEqual(before);
  }
});
