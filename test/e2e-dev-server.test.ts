/**
 * End to end on the Temporal dev server (the CLI the project provisions): HTTP API → Temporal → worker
 * → PostgreSQL, a directed voucher from issue to settled, and its search attributes queryable in
 * visibility as an operator would query them in the Web UI.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Db } from '../db/connection';
import { createVoucherWorker } from '../workers/voucher-worker';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../workflows/voucher/search-attributes';
import { keyFor, testApp } from './helpers/api';
import { devServerEnv, quietRuntime, testCodecKeys, testDb, testPii, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation } from './helpers/fixtures';

let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let server: Server;
let base: string;
let taskQueue: string;

beforeAll(async () => {
  quietRuntime();
  env = await devServerEnv();
  db = testDb();
  taskQueue = uniqueTaskQueue('e2e');
  worker = await createVoucherWorker({ connection: env.nativeConnection, db, taskQueue, codecKeys: testCodecKeys, workflowBundlePath: process.env.TEST_WORKFLOW_BUNDLE });
  running = worker.run();
  server = testApp(db, env.client, taskQueue).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 180_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

async function call(method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function eventually<T>(fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('R2.1 R3.1 R3.6 R3.9 R3.10: a directed voucher from HTTP issue to settled on the dev server, findable by VoucherStatus="settled"', async () => {
  const occupationCode = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  const cls = await makeClass(db, { institutionId, firstStart: Date.now() + 3 * 86_400_000, occupationCode, sessions: 5 });
  await makeCatalogueEntry(db, { occupationCode, level: cls.level, amountFen: 150_000, fundingSource: 'ui_employment_promotion' });
  const person = await makePerson(db, testPii);
  const hr = await keyFor(db, 'hr', { district: '330604' });
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  const inst = await keyFor(db, 'institution', { institutionId });

  const issued = await call('POST', '/v1/vouchers', hr, { type: 'directed', idNumber: person.idNumber, occupationCode });
  expect(issued.status).toBe(201);
  const no = issued.body.voucherNo as string;
  // R2.7: the holder obtains it through a channel after real-name verification.
  expect((await call('POST', `/v1/vouchers/${no}/claim`, holder, { channel: 'zlb', name: person.name, idNumber: person.idNumber, phone: person.phone })).status).toBe(201);
  expect((await call('POST', `/v1/vouchers/${no}/activate`, holder, { channel: 'zlb' })).body.status).toBe('activated');
  expect((await call('POST', `/v1/vouchers/${no}/enrol`, inst, { classId: cls.classId, review: { passed: true } })).body.status).toBe('in_training');
  for (const sessionId of cls.sessionIds.slice(0, 4)) {
    expect((await call('POST', `/v1/vouchers/${no}/check-ins`, inst, { sessionId })).status).toBe(202);
  }
  expect((await call('POST', `/v1/vouchers/${no}/complete`, inst, { assessmentPassed: true })).status).toBe(202);

  const settled = await eventually(async () => {
    const r = await call('GET', `/v1/vouchers/${no}`, hr);
    return r.body.status === 'settled' ? r.body : undefined;
  });
  expect(settled.checkInRate).toBe(80);
  expect(settled.settlement).toMatchObject({ outcome: 'approved', amountFen: 150_000, payerDistrict: '330604', paymentRoute: 'agency_expenditure_account' });

  // The read model, written by the workflow's activities.
  const row = await eventually(async () => {
    const r = await db('vouchers').where({ voucher_no: no, status: 'settled' }).first();
    return r ?? undefined;
  });
  expect(row.institution_id).toBe(institutionId);
  expect(await db('disbursements').where({ voucher_no: no })).toHaveLength(1);

  // Visibility: what an operator types into the Web UI.
  const found = await eventually(async () => {
    const ids: string[] = [];
    for await (const w of env.client.workflow.list({ query: `VoucherStatus="settled" AND IssuerDistrict="330604" AND InstitutionId="${institutionId}"` })) ids.push(w.workflowId);
    return ids.length ? ids : undefined;
  });
  expect(found).toEqual([`Voucher:${no}`]);
  const desc = await env.client.workflow.getHandle(`Voucher:${no}`).describe();
  expect(desc.typedSearchAttributes.get(ALL_SEARCH_ATTRIBUTE_KEYS.find((k) => k.name === 'CheckInRate')!)).toBe(80);
  expect(desc.typedSearchAttributes.get(ALL_SEARCH_ATTRIBUTE_KEYS.find((k) => k.name === 'OccupationCode')!)).toBe(occupationCode);
});
