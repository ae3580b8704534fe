/**
 * Fuzzes every documented endpoint from the OpenAPI document with schemathesis against a running API
 * (real worker, real PostgreSQL): no 5xx, no response outside the contract, and no state change from a
 * refused request (each table moves only by the number of successful requests that may move it).
 */
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Db } from '../db/connection';
import type { Role } from '../api/auth';
import { createApp } from '../api/app';
import { createDb } from '../db/connection';
import { migrateLatest } from '../db/migrate';
import { createLogger } from '../lib/logger';
import { createDatabase, dropDatabase, withDatabase } from '../lib/postgres';
import { keyFor } from './helpers/api';
import { testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeClass, makeInstitution, makePerson } from './helpers/fixtures';

let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let server: Server;
let base: string;

let ownDb: { server: string; name: string };

beforeAll(async () => {
  env = await timeSkippingEnv();
  // A database of its own: the "refused requests change nothing" counts must not see other test files' writes.
  const url = new URL(process.env.TEST_DATABASE_URL!);
  ownDb = { server: withDatabase(url.toString(), 'postgres'), name: `${url.pathname.slice(1)}_fuzz` };
  db = createDb(await createDatabase(ownDb.server, ownDb.name), { max: 5 });
  await migrateLatest(db);
  const taskQueue = uniqueTaskQueue('fuzz');
  worker = await testWorker(env, db, taskQueue);
  running = worker.run();
  server = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, rateLimitPerMinute: 1_000_000 }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Something real to find: a registered person and an approved institution with a class.
  await makePerson(db, testPii);
  const inst = await makeInstitution(db);
  await makeClass(db, { institutionId: inst, firstStart: Date.now() + 7 * 86_400_000, sessions: 2 });
}, 120_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
  if (ownDb) await dropDatabase(ownDb.server, ownDb.name);
});

async function counts() {
  const one = async (sql: string) => Number((await db.raw(sql)).rows[0].n);
  return {
    vouchers: await one('select coalesce(sum(last), 0) as n from voucher_counters'),
    quota: await one('select count(*) as n from activation_quota'),
    enrolments: await one('select count(*) as n from enrolments'),
    disbursements: await one('select count(*) as n from disbursements'),
  };
}

async function successes(principal: string, pathLike: string, status: number) {
  const r = await db('audit_log').where({ principal_id: principal, status }).andWhereLike('path', pathLike).count<{ n: string }[]>({ n: '*' });
  return Number(r[0]!.n);
}

function schemathesis(key: string): Promise<{ code: number; out: string }> {
  const args = [
    'run', `${base}/openapi.json`,
    '--checks', 'not_a_server_error,response_schema_conformance,content_type_conformance',
    '--phases', 'examples,coverage,fuzzing',
    '--max-examples', '12',
    '--workers', '1',
    '--header', `Authorization: Bearer ${key}`,
    '--seed', '20261127',
    '--suppress-health-check', 'all',
    '--no-color',
  ];
  return new Promise((resolve) => {
    execFile(process.env.SCHEMATHESIS_PATH!, args, { maxBuffer: 20 * 1024 * 1024, timeout: 240_000, env: { ...process.env, SCHEMATHESIS_HOOKS: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}\n${stderr}` });
    });
  });
}

test.each<[Role, Record<string, string>]>([
  ['hr', { district: '330602' }],
  ['institution', {}],
  ['holder', {}],
  // The settlement area's own roles: budgets, batches, reconciliation (finance), certificates (assessor), reads (operator).
  ['finance', { district: '330602' }],
  ['assessor', {}],
  ['operator', {}],
])('every endpoint fuzzed as %s: no 5xx, contract kept, refused requests change nothing', async (role, scope) => {
  const institutionId = role === 'institution' ? await makeInstitution(db) : undefined;
  const person = role === 'holder' ? await makePerson(db, testPii) : undefined;
  const key = await keyFor(db, role, { ...scope, institutionId, personRef: person?.personRef });
  const principal = key.split('_')[1]!.replace(/_.*/, '');
  const before = await counts();
  const { code, out } = await schemathesis(key);
  if (code !== 0 || process.env.FUZZ_VERBOSE) console.log(out.slice(-6000));
  expect(code).toBe(0);
  // It really ran: every documented operation tested, and many generated cases, all passed.
  const ops = /Selected: (\d+)\/(\d+)\s+Tested: (\d+)/.exec(out);
  expect(ops && ops[3] === ops[2]).toBe(true);
  const cases = /(\d+) generated, (\d+) passed/.exec(out);
  expect(Number(cases?.[1])).toBeGreaterThan(100);
  expect(cases?.[2]).toBe(cases?.[1]);
  const after = await counts();
  // Only successful requests may move state, one row each.
  expect(after.vouchers - before.vouchers).toBe(await successes(principal, '/v1/vouchers', 201));
  expect(after.quota - before.quota).toBe(await successes(principal, '/v1/vouchers/%/activate', 200));
  expect(after.enrolments - before.enrolments).toBe(await successes(principal, '/v1/vouchers/%/enrol', 200));
  expect(after.disbursements).toBe(before.disbursements);
}, 300_000);
