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

beforeAll(async () => {
  env = await timeSkippingEnv();
  db = testDb();
  const taskQueue = uniqueTaskQueue('matrix');
  worker = await testWorker(env, db, taskQueue);
  running = worker.run();
  app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, codecKeys: testCodecKeys, rateLimitPerMinute: 100_000 });
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

/** A world where every role has an in-scope principal for one voucher, in a given state. */
async function world(state: 'issued' | 'activated' | 'in_training') {
  const person = await makePerson(db, testPii);
  const occ = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  const cls = await makeClass(db, { institutionId, firstStart: (await env.currentTimeMs()) + 7 * DAY, occupationCode: occ, sessions: 3 });
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
  return { person, keys, no, cls };
}

type World = Awaited<ReturnType<typeof world>>;
interface Cell {
  state: 'issued' | 'activated' | 'in_training';
  call: (w: World, key: string) => request.Test;
  /** What must not have changed after a refused call. */
  unchanged?: (w: World) => Promise<unknown>;
}

const state = async (w: World) => (await db('vouchers').where({ voucher_no: w.no }).first())?.status;
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
};

test('the table lists every endpoint the matrix knows, and every row has a scenario', () => {
  expect(table.map((r) => r.endpoint).sort()).toEqual(Object.keys(CELLS).sort());
});

const cases = table.flatMap((row) => ROLES.map((role) => [row.endpoint, role, row.cells[role]] as const));
test.each(cases)('%s as %s: %s', async (endpoint, role, expected) => {
  const cell = CELLS[endpoint]!;
  const w = await world(cell.state);
  const before = cell.unchanged ? await cell.unchanged(w) : undefined;
  const res = await cell.call(w, w.keys[role]);
  if (expected.startsWith('✓')) {
    expect({ endpoint, role, status: res.status < 300 }).toEqual({ endpoint, role, status: true });
  } else {
    expect({ endpoint, role, status: res.status }).toEqual({ endpoint, role, status: Number(expected) });
    if (cell.unchanged) expect(await cell.unchanged(w)).toEqual(before);
  }
});
