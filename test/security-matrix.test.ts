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
import { createAllActivities } from '../activities';
import { batchNumber, renderBatchFiles } from '../activities/settlement-activities';
import { createApp } from '../api/app';
import type { Role } from '../api/auth';
import { createDb, type Db } from '../db/connection';
import { migrateLatest } from '../db/migrate';
import { createLogger } from '../lib/logger';
import { createDatabase, dropDatabase, withDatabase } from '../lib/postgres';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { bearer, keyFor } from './helpers/api';
import { testCodecKeys, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, makeResidentId, uid, uniqueOccupation } from './helpers/fixtures';

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
/** A database of its own: batch runs and budget top-ups here must not touch other test files' money. */
let ownDb: { server: string; name: string };
let worker: Worker;
let running: Promise<void>;
let app: Express;
/** The API's clock runs this far ahead of the wall clock (training scenarios move into a session). */
let clockOffset = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
  const url = new URL(process.env.TEST_DATABASE_URL!);
  ownDb = { server: withDatabase(url.toString(), 'postgres'), name: `${url.pathname.slice(1)}_matrix` };
  db = createDb(await createDatabase(ownDb.server, ownDb.name), { max: 5 });
  await migrateLatest(db);
  const taskQueue = uniqueTaskQueue('matrix');
  worker = await testWorker(env, db, taskQueue, createAllActivities({ db, pii: testPii }));
  running = worker.run();
  app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, codecKeys: testCodecKeys, rateLimitPerMinute: 100_000, now: () => Date.now() + clockOffset });
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
  if (ownDb) await dropDatabase(ownDb.server, ownDb.name);
});

/** A world where every role has an in-scope principal for one voucher, in a given state. */
type WorldState = 'issued' | 'claimed' | 'activated' | 'in_training';
async function world(state: WorldState) {
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
  // R2.7: the holder obtains the voucher by claiming it after real-name verification, then activates it.
  if (state !== 'issued') await request(app).post(`/v1/vouchers/${no}/claim`).set(bearer(keys.holder)).send(claimBody(person)).expect(201);
  if (state === 'activated' || state === 'in_training') await request(app).post(`/v1/vouchers/${no}/activate`).set(bearer(keys.holder)).send({}).expect(200);
  if (state === 'in_training') await request(app).post(`/v1/vouchers/${no}/enrol`).set(bearer(keys.institution)).send({ classId: cls.classId, review: { passed: true } }).expect(200);
  // The read model is written by an activity: wait until it shows the state, so `unchanged` reads a settled value.
  for (let i = 0; i < 200 && (await db('vouchers').where({ voucher_no: no }).first())?.status !== state; i++) await new Promise((r) => setTimeout(r, 50));
  return { person, keys, no, cls, firstStart, pendingInstitutionId, rectificationInstitutionId, extra: {} as Record<string, string> };
}

type World = Awaited<ReturnType<typeof world>>;
const claimBody = (p: { name: string; idNumber: string; phone: string }) => ({ channel: 'alipay', name: p.name, idNumber: p.idNumber, phone: p.phone });

interface Cell {
  state: WorldState;
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
const FUND = 'ui_employment_promotion';
const count = async (table: string, where: Record<string, unknown>) => Number((await db(table).where(where).count<{ n: string }[]>({ n: '*' }))[0]!.n);

/** R2.6: a training plan for DISTRICT, in the body the world's (department) institution files. */
const planBody = (w: World) => ({
  planId: w.extra.planId,
  district: DISTRICT,
  occupationCode: w.cls.occupationCode,
  trainees: 10,
  subsidyStandardFen: 90_000,
  fundingSource: FUND,
  periodFrom: '2027-01-01',
  periodTo: '2027-06-30',
});

/** The world's institution, as an industry department, has filed a plan with DISTRICT (R2.6). */
async function filedPlan(w: World): Promise<void> {
  await db('institutions').where({ id: w.cls.institutionId }).update({ kind: 'industry_department' });
  w.extra.planId = uid('PLAN');
  await request(app).post('/v1/training-plans').set(bearer(w.keys.institution)).send(planBody(w)).expect(201);
}

/** A trainee list the world's institution uploaded for DISTRICT (R2.5); its issuance job runs. */
async function traineeList(w: World): Promise<string> {
  const listId = uid('LIST');
  await request(app)
    .post('/v1/trainee-lists')
    .set(bearer(w.keys.institution))
    .send({ listId, district: DISTRICT, occupationCode: w.cls.occupationCode, rows: [{ idNumber: w.person.idNumber, name: w.person.name, phone: w.person.phone }] })
    .expect(202);
  return listId;
}

let batchSeq = 0;
/** A batch of DISTRICT in the given state with one line paying the world's person, and its files (R3.13). */
async function batch(w: World, status: 'prepared' | 'approved' | 'sent'): Promise<string> {
  batchSeq += 1;
  const date = new Date(Date.UTC(2060, 0, 1) + batchSeq * DAY).toISOString().slice(0, 10);
  const id = batchNumber(DISTRICT, FUND, date);
  const voucherNo = `SX${DISTRICT}2060${String(batchSeq).padStart(6, '0')}`;
  const amount = 12_345;
  const [d] = await db('disbursements')
    .insert({ voucher_no: voucherNo, payer_district: DISTRICT, payee_type: 'person', payee_ref: w.person.personRef, amount_fen: amount, funding_source: FUND, payment_route: 'agency_expenditure_account', status: 'batched', batch_id: id })
    .returning('id');
  await db('settlement_batches').insert({ id, district: DISTRICT, funding_source: FUND, payment_route: 'agency_expenditure_account', batch_date: date, status, total_fen: amount, line_count: 1 });
  await db('batch_lines').insert({
    batch_id: id,
    line_no: 1,
    disbursement_id: d.id,
    voucher_no: voucherNo,
    payee_type: 'person',
    payee_ref: w.person.personRef,
    payee_id_masked: `**************${w.person.idNumber.slice(-4)}`,
    payee_name_enc: testPii.encrypt(w.person.name),
    account_enc: testPii.encrypt(w.person.bankAccount),
    amount_fen: amount,
  });
  await renderBatchFiles(db, testPii, id);
  return id;
}

/** The world's in-training voucher trained in full, passed and settled (R3.10): a disbursement paid by DISTRICT. */
async function settle(w: World): Promise<void> {
  await makeCatalogueEntry(db, { occupationCode: w.cls.occupationCode, level: w.cls.level, amountFen: 50_000, fundingSource: 'employment_subsidy' });
  for (const sessionId of w.cls.sessionIds) await request(app).post(`/v1/vouchers/${w.no}/check-ins`).set(bearer(w.keys.institution)).send({ sessionId }).expect(202);
  await request(app).post(`/v1/vouchers/${w.no}/complete`).set(bearer(w.keys.institution)).send({ assessmentPassed: true }).expect(202);
  await env.client.workflow.getHandle(voucherWorkflowId(w.no)).result();
  for (let i = 0; i < 200 && (await db('vouchers').where({ voucher_no: w.no }).first())?.status !== 'settled'; i++) await new Promise((r) => setTimeout(r, 50));
  expect((await db('disbursements').where({ voucher_no: w.no }).first())?.payer_district).toBe(DISTRICT);
}

/** An institution of DISTRICT (which supervises it, R4.3) with a class whose two sessions have already taken place. */
async function supervisedClass(w: World): Promise<void> {
  w.extra.supervisedInstitutionId = await makeInstitution(db, 'approved', DISTRICT);
  await makeClass(db, { institutionId: w.extra.supervisedInstitutionId, firstStart: Date.now() - 3 * DAY, sessions: 2 });
}

/** A spot check DISTRICT's HR drew of that class (R4.3). */
async function spotCheck(w: World): Promise<void> {
  await supervisedClass(w);
  const sc = await request(app)
    .post('/v1/spot-checks')
    .set(bearer(w.keys.hr))
    .send({ from: '2020-01-01', to: '2099-12-31', sampleSize: 2, institutionId: w.extra.supervisedInstitutionId })
    .expect(201);
  w.extra.spotCheckId = sc.body.id;
}

/** A valid resident ID number nobody is registered with. */
async function freshResidentId(): Promise<string> {
  let id = makeResidentId(`19${String(10 + Math.floor(Math.random() * 89))}0202`);
  while (await db('persons').where({ person_ref: testPii.personRef(id) }).first()) id = makeResidentId(`19${String(10 + Math.floor(Math.random() * 89))}0303`);
  return id;
}

const CELLS: Record<string, Cell> = {
  'POST /v1/vouchers': {
    state: 'issued',
    call: (w, key) => request(app).post('/v1/vouchers').set(bearer(key)).send({ type: 'directed', idNumber: w.person.idNumber, occupationCode: '1-01' }),
    unchanged: async () => Number((await db('voucher_counters').where({ district: DISTRICT }).first())?.last ?? 0),
  },
  'GET /v1/vouchers': { state: 'in_training', call: (_w, key) => request(app).get('/v1/vouchers').set(bearer(key)) },
  'GET /v1/vouchers/{no}': { state: 'in_training', call: (w, key) => request(app).get(`/v1/vouchers/${w.no}`).set(bearer(key)) },
  'POST /v1/vouchers/{no}/activate': { state: 'claimed', call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/activate`).set(bearer(key)).send({}), unchanged: state },
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
  'PUT /v1/institutions/{id}/bank-account': {
    state: 'issued',
    call: (w, key) => request(app).put(`/v1/institutions/${w.cls.institutionId}/bank-account`).set(bearer(key)).send({ account: '6222000033334444' }),
    unchanged: async (w) => [(await db('institutions').where({ id: w.cls.institutionId }).first())?.bank_account_enc ?? null, await count('account_changes', { institution_id: w.cls.institutionId })],
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
  // ---- issuance (R2.1, R2.5, R2.7) ----
  'POST /v1/persons': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.idNumber = await freshResidentId();
    },
    call: (w, key) =>
      request(app).post('/v1/persons').set(bearer(key)).send({ idNumber: w.extra.idNumber, name: '矩阵', phone: '13800000000', civilService: false, eastWestPartner: true, uiContributions: [], priorityGroups: [] }),
    unchanged: async (w) => count('persons', { person_ref: testPii.personRef(w.extra.idNumber!) }),
  },
  'GET /v1/persons/{personRef}': { state: 'issued', call: (w, key) => request(app).get(`/v1/persons/${w.person.personRef}`).set(bearer(key)) },
  'POST /v1/vouchers/{no}/claim': { state: 'issued', call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/claim`).set(bearer(key)).send(claimBody(w.person)), unchanged: state },
  'POST /v1/trainee-lists': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.listId = uid('LIST');
    },
    call: (w, key) =>
      request(app)
        .post('/v1/trainee-lists')
        .set(bearer(key))
        .send({ listId: w.extra.listId, district: DISTRICT, occupationCode: w.cls.occupationCode, rows: [{ idNumber: w.person.idNumber, name: w.person.name, phone: w.person.phone }] }),
    unchanged: async (w) => [await count('trainee_lists', { list_id: w.extra.listId }), await count('issuance_rows', { list_id: w.extra.listId })],
  },
  'GET /v1/issuance-jobs/{listId}': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.listId = await traineeList(w);
    },
    call: (w, key) => request(app).get(`/v1/issuance-jobs/${w.extra.listId}`).set(bearer(key)),
  },
  'GET /v1/issuance-jobs/{listId}/rows': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.listId = await traineeList(w);
    },
    call: (w, key) => request(app).get(`/v1/issuance-jobs/${w.extra.listId}/rows`).query({ limit: 10 }).set(bearer(key)),
  },

  // ---- settlement (R3.11–R3.13, R4.5, R5.1) ----
  'POST /v1/catalogue': {
    state: 'issued',
    call: (w, key) =>
      request(app).post('/v1/catalogue').set(bearer(key)).send({ occupationCode: w.cls.occupationCode, level: '4', trainingKind: 'certificate', amountFen: 80_000, fundingSource: FUND, validFrom: '2026-01-01' }),
    unchanged: async (w) => count('subsidy_catalogue', { occupation_code: w.cls.occupationCode }),
  },
  'POST /v1/training-plans': {
    state: 'issued',
    // R2.6: the world's institution runs as an industry department, the one kind that files plans.
    prepare: async (w) => {
      await db('institutions').where({ id: w.cls.institutionId }).update({ kind: 'industry_department' });
      w.extra.planId = uid('PLAN');
    },
    call: (w, key) => request(app).post('/v1/training-plans').set(bearer(key)).send(planBody(w)),
    unchanged: async (w) => count('training_plans', { plan_id: w.extra.planId }),
  },
  'GET /v1/training-plans': { state: 'issued', prepare: filedPlan, call: (_w, key) => request(app).get('/v1/training-plans').set(bearer(key)) },
  'GET /v1/training-plans/{planId}': { state: 'issued', prepare: filedPlan, call: (w, key) => request(app).get(`/v1/training-plans/${w.extra.planId}`).set(bearer(key)) },
  'GET /v1/training-plans/{planId}/performance': { state: 'issued', prepare: filedPlan, call: (w, key) => request(app).get(`/v1/training-plans/${w.extra.planId}/performance`).set(bearer(key)) },
  'POST /v1/training-plans/{planId}/acknowledge': {
    state: 'issued',
    prepare: filedPlan,
    call: (w, key) => request(app).post(`/v1/training-plans/${w.extra.planId}/acknowledge`).set(bearer(key)).send(),
    unchanged: async (w) => db('training_plans').where({ plan_id: w.extra.planId }).first('hr_ack_at', 'finance_ack_at'),
  },
  'POST /v1/certificates': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.certificateNo = uid('CERT');
    },
    call: (w, key) =>
      request(app)
        .post('/v1/certificates')
        .set(bearer(key))
        .send({ certificateNo: w.extra.certificateNo, idNumber: w.person.idNumber, occupationCode: w.cls.occupationCode, level: '4', issuedOn: '2026-06-01' }),
    unchanged: async (w) => count('certificates', { certificate_no: w.extra.certificateNo }),
  },
  'GET /v1/budgets': { state: 'issued', call: (_w, key) => request(app).get('/v1/budgets').set(bearer(key)) },
  'POST /v1/budgets/{district}/{fundingSource}/{year}/top-up': {
    state: 'issued',
    call: (_w, key) => request(app).post(`/v1/budgets/${DISTRICT}/${FUND}/2099/top-up`).set(bearer(key)).send({ amountFen: 100 }),
    unchanged: async () => [await count('budget_top_ups', { district: DISTRICT, year: 2099 }), (await db('budgets').where({ district: DISTRICT, funding_source: FUND, year: 2099 }).first())?.total_fen ?? null],
  },
  'GET /v1/budget-queue': { state: 'issued', call: (_w, key) => request(app).get('/v1/budget-queue').set(bearer(key)) },
  'POST /v1/settlement-batches/run': {
    state: 'issued',
    call: (_w, key) => request(app).post('/v1/settlement-batches/run').set(bearer(key)).send({}),
    unchanged: async () => [await count('settlement_batches', {}), await count('disbursements', { status: 'batched' })],
  },
  'GET /v1/settlement-batches': { state: 'issued', call: (_w, key) => request(app).get('/v1/settlement-batches').set(bearer(key)) },
  'GET /v1/settlement-batches/{id}': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.batchId = await batch(w, 'prepared');
    },
    call: (w, key) => request(app).get(`/v1/settlement-batches/${w.extra.batchId}`).set(bearer(key)),
  },
  'POST /v1/settlement-batches/{id}/approve': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.batchId = await batch(w, 'prepared');
    },
    call: (w, key) => request(app).post(`/v1/settlement-batches/${w.extra.batchId}/approve`).set(bearer(key)).send({}),
    unchanged: async (w) => db('settlement_batches').where({ id: w.extra.batchId }).first('status', 'approved_by'),
  },
  'POST /v1/settlement-batches/{id}/send': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.batchId = await batch(w, 'approved');
    },
    call: (w, key) => request(app).post(`/v1/settlement-batches/${w.extra.batchId}/send`).set(bearer(key)).send({}),
    unchanged: async (w) => db('settlement_batches').where({ id: w.extra.batchId }).first('status', 'sent_by'),
  },
  'GET /v1/settlement-batches/{id}/{file}': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.batchId = await batch(w, 'sent');
    },
    call: (w, key) => request(app).get(`/v1/settlement-batches/${w.extra.batchId}/table.csv`).set(bearer(key)),
  },
  'POST /v1/settlement-batches/{id}/reconciliation': {
    state: 'issued',
    prepare: async (w) => {
      w.extra.batchId = await batch(w, 'sent');
    },
    call: (w, key) => request(app).post(`/v1/settlement-batches/${w.extra.batchId}/reconciliation`).set(bearer(key)).set('content-type', 'text/csv').send('line,result,reason\r\n1,paid,\r\n'),
    unchanged: async (w) => [await db('settlement_batches').where({ id: w.extra.batchId }).first('status'), await db('batch_lines').where({ batch_id: w.extra.batchId }).select('result', 'confirmed_by')],
  },
  'PUT /v1/persons/{personRef}/bank-account': {
    state: 'issued',
    call: (w, key) => request(app).put(`/v1/persons/${w.person.personRef}/bank-account`).set(bearer(key)).send({ account: '6222000011112222' }),
    unchanged: async (w) => [(await db('persons').where({ person_ref: w.person.personRef }).first())?.bank_account_enc, await count('account_changes', { person_ref: w.person.personRef })],
  },
  'POST /v1/vouchers/{no}/clawback': {
    state: 'in_training',
    prepare: settle,
    call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/clawback`).set(bearer(key)).send({ reason: 'matrix: fake training' }),
    unchanged: async (w) => [await count('clawbacks', { voucher_no: w.no }), await count('institution_strikes', { institution_id: w.cls.institutionId })],
  },
  'POST /v1/vouchers/{no}/clawback/recovered': {
    state: 'in_training',
    prepare: async (w) => {
      await settle(w);
      await request(app).post(`/v1/vouchers/${w.no}/clawback`).set(bearer(w.keys.hr)).send({ reason: 'matrix: fake training' }).expect(201);
    },
    call: (w, key) => request(app).post(`/v1/vouchers/${w.no}/clawback/recovered`).set(bearer(key)).send({}),
    unchanged: async (w) => db('clawbacks').where({ voucher_no: w.no }).first('recovered_at', 'recovered_by'),
  },
  // ---- supervision (R4.3) ----
  'POST /v1/spot-checks': {
    state: 'issued',
    prepare: async (w) => {
      await supervisedClass(w);
    },
    call: (w, key) => request(app).post('/v1/spot-checks').set(bearer(key)).send({ from: '2020-01-01', to: '2099-12-31', sampleSize: 2, institutionId: w.extra.supervisedInstitutionId }),
    unchanged: async () => count('spot_checks', { district: DISTRICT }),
  },
  'GET /v1/spot-checks': { state: 'issued', call: (_w, key) => request(app).get('/v1/spot-checks').set(bearer(key)) },
  'GET /v1/spot-checks/{id}': {
    state: 'issued',
    prepare: spotCheck,
    call: (w, key) => request(app).get(`/v1/spot-checks/${w.extra.spotCheckId}`).set(bearer(key)),
  },
  'PUT /v1/spot-checks/{id}/items/{itemNo}/finding': {
    state: 'issued',
    prepare: spotCheck,
    call: (w, key) => request(app).put(`/v1/spot-checks/${w.extra.spotCheckId}/items/1/finding`).set(bearer(key)).send({ result: 'satisfactory', note: 'matrix visit' }),
    unchanged: async (w) => db('spot_check_items').where({ spot_check_id: w.extra.spotCheckId }).select('item_no', 'result', 'finding_by'),
  },
  'GET /v1/clawbacks': { state: 'issued', call: (_w, key) => request(app).get('/v1/clawbacks').set(bearer(key)) },
  'GET /v1/fund-performance': { state: 'issued', call: (_w, key) => request(app).get('/v1/fund-performance').query({ year: 2026 }).set(bearer(key)) },
  'GET /v1/statistics': { state: 'issued', call: (_w, key) => request(app).get('/v1/statistics').query({ from: '2026-01-01', to: '2026-12-31' }).set(bearer(key)) },
  'GET /v1/public/catalogue': { state: 'issued', call: (_w, key) => request(app).get('/v1/public/catalogue').query({ format: 'csv' }).set(bearer(key)) },
  'GET /stats': { state: 'issued', call: (_w, key) => request(app).get('/stats').set(bearer(key)) },
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

test('issuance and settlement: outside the caller\'s scope an object answers 404 exactly like a missing one, lists hold only the scope, and nothing changes', async () => {
  const w = await world('in_training');
  await settle(w);
  const listId = await traineeList(w);
  const batchId = await batch(w, 'sent');
  // R2.6: a plan an industry department filed with DISTRICT.
  const deptId = await makeInstitution(db, 'approved', DISTRICT);
  await db('institutions').where({ id: deptId }).update({ kind: 'industry_department' });
  const planId = uid('PLAN');
  await request(app).post('/v1/training-plans').set(bearer(await keyFor(db, 'institution', { institutionId: deptId }))).send({ ...planBody(w), planId }).expect(201);
  const OTHER = '330602';
  const other = {
    hr: await keyFor(db, 'hr', { district: OTHER }),
    finance: await keyFor(db, 'finance', { district: OTHER }),
    institution: await keyFor(db, 'institution', { institutionId: await makeInstitution(db) }),
    holder: await keyFor(db, 'holder', { personRef: (await makePerson(db, testPii)).personRef }),
  };
  const before = [
    await db('settlement_batches').where({ id: batchId }).first('status'),
    await db('batch_lines').where({ batch_id: batchId }).select('result'),
    await count('clawbacks', { voucher_no: w.no }),
    (await db('persons').where({ person_ref: w.person.personRef }).first()).bank_account_enc,
    await count('budget_top_ups', { district: DISTRICT }),
    await db('training_plans').where({ plan_id: planId }).first('hr_ack_at', 'finance_ack_at'),
  ];
  const missingBatch = batchNumber(DISTRICT, FUND, '2099-12-31');
  const cases: [string, request.Test, string][] = [
    ['job, other district HR', request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(other.hr)), 'ISSUANCE_JOB_NOT_FOUND'],
    ['job rows, other district HR', request(app).get(`/v1/issuance-jobs/${listId}/rows`).set(bearer(other.hr)), 'ISSUANCE_JOB_NOT_FOUND'],
    ['job, other institution', request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(other.institution)), 'ISSUANCE_JOB_NOT_FOUND'],
    ['job, missing', request(app).get('/v1/issuance-jobs/NO-SUCH-LIST').set(bearer(w.keys.hr)), 'ISSUANCE_JOB_NOT_FOUND'],
    ['claim, another holder', request(app).post(`/v1/vouchers/${w.no}/claim`).set(bearer(other.holder)).send(claimBody(w.person)), 'VOUCHER_NOT_FOUND'],
    ['batch, other district HR', request(app).get(`/v1/settlement-batches/${batchId}`).set(bearer(other.hr)), 'BATCH_NOT_FOUND'],
    ['batch, other district finance', request(app).get(`/v1/settlement-batches/${batchId}`).set(bearer(other.finance)), 'BATCH_NOT_FOUND'],
    ['batch, missing', request(app).get(`/v1/settlement-batches/${missingBatch}`).set(bearer(w.keys.hr)), 'BATCH_NOT_FOUND'],
    ['approve, other district HR', request(app).post(`/v1/settlement-batches/${batchId}/approve`).set(bearer(other.hr)).send({}), 'BATCH_NOT_FOUND'],
    ['send, other district HR', request(app).post(`/v1/settlement-batches/${batchId}/send`).set(bearer(other.hr)).send({}), 'BATCH_NOT_FOUND'],
    ['file, other district finance', request(app).get(`/v1/settlement-batches/${batchId}/table.xlsx`).set(bearer(other.finance)), 'BATCH_NOT_FOUND'],
    ['reconciliation, other district finance', request(app).post(`/v1/settlement-batches/${batchId}/reconciliation`).set(bearer(other.finance)).set('content-type', 'text/csv').send('line,result,reason\r\n1,paid,\r\n'), 'BATCH_NOT_FOUND'],
    ['top-up, other district finance', request(app).post(`/v1/budgets/${DISTRICT}/${FUND}/2099/top-up`).set(bearer(other.finance)).send({ amountFen: 100 }), 'BUDGET_NOT_FOUND'],
    ['bank account, HR of none of the person\'s districts', request(app).put(`/v1/persons/${w.person.personRef}/bank-account`).set(bearer(other.hr)).send({ account: '6222000011112222' }), 'PERSON_NOT_FOUND'],
    ['bank account, missing person', request(app).put(`/v1/persons/P${'0'.repeat(40)}/bank-account`).set(bearer(w.keys.hr)).send({ account: '6222000011112222' }), 'PERSON_NOT_FOUND'],
    ['clawback, other district HR', request(app).post(`/v1/vouchers/${w.no}/clawback`).set(bearer(other.hr)).send({ reason: 'x' }), 'VOUCHER_NOT_FOUND'],
    ['plan, other district HR', request(app).get(`/v1/training-plans/${planId}`).set(bearer(other.hr)), 'PLAN_NOT_FOUND'],
    ['plan, other district finance', request(app).get(`/v1/training-plans/${planId}`).set(bearer(other.finance)), 'PLAN_NOT_FOUND'],
    ['plan, another institution', request(app).get(`/v1/training-plans/${planId}`).set(bearer(other.institution)), 'PLAN_NOT_FOUND'],
    ['plan, missing', request(app).get('/v1/training-plans/NO-SUCH-PLAN').set(bearer(w.keys.hr)), 'PLAN_NOT_FOUND'],
    ['plan acknowledgement, other district HR', request(app).post(`/v1/training-plans/${planId}/acknowledge`).set(bearer(other.hr)).send(), 'PLAN_NOT_FOUND'],
    ['plan acknowledgement, other district finance', request(app).post(`/v1/training-plans/${planId}/acknowledge`).set(bearer(other.finance)).send(), 'PLAN_NOT_FOUND'],
    ['clawback recovered, other district HR', request(app).post(`/v1/vouchers/${w.no}/clawback/recovered`).set(bearer(other.hr)).send({}), 'VOUCHER_NOT_FOUND'],
  ];
  for (const [label, call, code] of cases) {
    const r = await call;
    expect({ label, status: r.status, code: r.body.code }).toEqual({ label, status: 404, code });
  }
  expect([
    await db('settlement_batches').where({ id: batchId }).first('status'),
    await db('batch_lines').where({ batch_id: batchId }).select('result'),
    await count('clawbacks', { voucher_no: w.no }),
    (await db('persons').where({ person_ref: w.person.personRef }).first()).bank_account_enc,
    await count('budget_top_ups', { district: DISTRICT }),
    await db('training_plans').where({ plan_id: planId }).first('hr_ack_at', 'finance_ack_at'),
  ]).toEqual(before);
  // A district principal's plan list holds its district only.
  const plans = await request(app).get('/v1/training-plans').set(bearer(other.hr)).expect(200);
  expect(plans.body.items.map((x: { planId: string }) => x.planId)).not.toContain(planId);
  // Lists of a district principal hold only its district, whatever the filter asks.
  const batches = await request(app).get('/v1/settlement-batches').query({ district: DISTRICT }).set(bearer(other.hr)).expect(200);
  expect(batches.body.items).toEqual([]);
  const queue = await request(app).get('/v1/budget-queue').set(bearer(other.finance)).expect(200);
  expect(queue.body.items.map((x: { voucherNo: string }) => x.voucherNo)).not.toContain(w.no);
  const own = await request(app).get('/v1/budget-queue').set(bearer(w.keys.finance)).expect(200);
  expect(own.body.items.map((x: { voucherNo: string }) => x.voucherNo)).toContain(w.no);
});
