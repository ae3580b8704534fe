/**
 * Directed issuance from trainee lists (R2.5, R2.6) over the real API, a real worker (time-skipping
 * server) and PostgreSQL: a large CSV list becomes exactly one voucher per eligible row through the
 * `bulkIssuanceWorkflow`, every other row comes back with its reasons, a re-upload issues nothing
 * twice, a crashed chunk re-run issues nothing twice, and no personal data reaches Temporal.
 *
 * Size: ISSUANCE_BULK_ROWS rows (default 10,000, the size the issue names; about 95 s on 2 loaded cores).
 */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Express } from 'express';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createAllActivities } from '../activities';
import { createIssuanceActivities } from '../activities/issuance-activities';
import { createDb, type Db } from '../db/connection';
import { localYear } from '../policy/calendar';
import { issuanceWorkflowId, type IssuanceProgress } from '../workflows/issuance/contract';
import { issuanceProgressQuery } from '../workflows/issuance/messages';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { claimUpdate } from '../workflows/voucher/messages';
import { initialSnapshot } from '../workflows/voucher/initial-state';
import { bearer, keyFor, testApp } from './helpers/api';
import { ownDatabase, type OwnDatabase, testPii, testWorker, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makeInstitution, uid } from './helpers/fixtures';

const N = Number(process.env.ISSUANCE_BULK_ROWS ?? 10_000);
const SHIFT = 8 * 365 * 86_400_000;
jest.setTimeout(15 * 60_000);

let env: TestWorkflowEnvironment;
let db: Db;
let workerDb: Db;
let own: OwnDatabase | undefined;
let worker: Worker;
let running: Promise<void>;
let app: Express;
let taskQueue: string;
let instId: string;
let inst: string;
let hr: string;
let hrOther: string;

beforeAll(async () => {
  env = await timeSkippingEnv();
  // A database of its own: thousands of vouchers here must not move the global counts other test files
  // compare before and after (they run in parallel).
  own = await ownDatabase('bulk');
  db = own.db;
  workerDb = createDb(own.url, { max: 12 });
  taskQueue = uniqueTaskQueue('bulk');
  // The activities' clock runs SHIFT ahead: vouchers are numbered in a year no other test file issues in,
  // so that year's counters count only this file's vouchers while other files run in parallel.
  worker = await testWorker(env, workerDb, taskQueue, createAllActivities({ db: workerDb, now: () => Date.now() + SHIFT }));
  running = worker.run();
  app = testApp(db, env.client, taskQueue);
  instId = await makeInstitution(db, 'approved', '330603');
  inst = await keyFor(db, 'institution', { institutionId: instId });
  hr = await keyFor(db, 'hr', { district: '330602' });
  hrOther = await keyFor(db, 'hr', { district: '330683' });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await workerDb?.destroy();
  await own?.drop(); // destroys `db` too
});

let serial = 0;
const runTag = String(Math.floor(Math.random() * 900) + 100);
/** A valid resident ID unique to this file and run (area 3306 8x is used by no other test). */
function residentId(): string {
  serial += 1;
  const body = `330688${runTag}${String(serial).padStart(8, '0')}`;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * weights[i]!;
  return body + '10X98765432'[sum % 11];
}

interface Trainee {
  idNumber: string;
  name: string;
  phone: string;
  personRef: string;
  kind: 'eligible' | 'no_link' | 'civil_service';
}

/** Registers `n` persons with one multi-row insert per 1,000 (the registry as HR would have it). */
async function insertPersons(n: number, kindOf: (i: number) => Trainee['kind']): Promise<Trainee[]> {
  const out: Trainee[] = [];
  for (let i = 0; i < n; i++) {
    const idNumber = residentId();
    out.push({ idNumber, name: `学员${serial}`, phone: `13${String(100_000_000 + serial).slice(-9)}`, personRef: testPii.personRef(idNumber), kind: kindOf(i) });
  }
  const rows = out.map((t) => ({
    person_ref: t.personRef,
    id_number_enc: testPii.encrypt(t.idNumber),
    id_number_last4: t.idNumber.slice(-4),
    name_enc: testPii.encrypt(t.name),
    phone_enc: testPii.encrypt(t.phone),
    employment_status: 'employed',
    employment_district: t.kind === 'no_link' ? '330683' : '330602',
    civil_service: t.kind === 'civil_service',
  }));
  for (let i = 0; i < rows.length; i += 1000) await db('persons').insert(rows.slice(i, i + 1000));
  return out;
}

const csvOf = (rows: { idNumber: string; name: string; phone: string }[], header = 'idNumber,name,phone') =>
  [header, ...rows.map((r) => `${r.idNumber},${r.name},${r.phone}`)].join('\n') + '\n';

function upload(key: string, csv: string, q: { listId: string; district: string; occupationCode: string }) {
  return request(app).post('/v1/trainee-lists').query(q).set(bearer(key)).set('content-type', 'text/csv').send(csv);
}

async function waitDone(key: string, listId: string, timeoutMs = 12 * 60_000): Promise<IssuanceProgress> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(key));
    expect(r.status).toBe(200);
    if (r.body.status === 'completed') return r.body;
    if (Date.now() > until) throw new Error(`job ${listId} not done: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

const counter = async () =>
  Number((await db('voucher_counters').where({ year: localYear(Date.now() + SHIFT, 'Asia/Shanghai') }).sum<{ n: string }[]>({ n: 'last' }))[0]?.n ?? 0);

describe(`a trainee list of ${N} rows`, () => {
  let trainees: Trainee[];
  let csv: string;
  let listId: string;
  let extras: { invalid: string; unregistered: string; mismatch: Trainee };
  const meta = () => ({ listId, district: '330602', occupationCode: '6-28-01' });

  beforeAll(async () => {
    trainees = await insertPersons(N, (i) => (i % 10 === 3 ? 'no_link' : i % 10 === 7 ? 'civil_service' : 'eligible'));
    const [mismatch] = await insertPersons(1, () => 'eligible');
    extras = { invalid: '330602199001010012', unregistered: residentId(), mismatch: mismatch! };
    csv = csvOf([
      ...trainees,
      trainees[0]!, // duplicate of row 1
      { idNumber: extras.invalid, name: '甲', phone: '13000000000' },
      { idNumber: extras.unregistered, name: '乙', phone: '13000000001' },
      { ...extras.mismatch, name: '不是本人' },
    ]);
    listId = uid('L');
  });

  test('R2.5 R2.4 R1.2: every eligible row gets exactly one directed voucher, every other row its reasons, and the counts add up', async () => {
    const t0 = Date.now();
    const up = await upload(inst, csv, meta());
    expect(up.status).toBe(202);
    expect(up.headers.location).toBe(`/v1/issuance-jobs/${listId}`);
    expect(up.body.total).toBe(N + 4);
    const done = await waitDone(inst, listId);
    const eligible = trainees.filter((t) => t.kind === 'eligible');
    expect(done).toMatchObject({ listId, total: N + 4, processed: N + 4, issued: eligible.length, rejected: N + 4 - eligible.length, status: 'completed' });
    // eslint-disable-next-line no-console
    console.log(`bulk issuance of ${N} rows took ${Date.now() - t0} ms`);

    // Exactly one voucher per eligible person, numbers all distinct.
    expect(await counter()).toBe(eligible.length); // one number per eligible row, none wasted
    const issued = await db('issuance_rows').where({ list_id: listId, outcome: 'issued' }).select('person_ref', 'voucher_no');
    expect(issued).toHaveLength(eligible.length);
    expect(new Set(issued.map((r) => r.voucher_no)).size).toBe(eligible.length);
    expect(new Set(issued.map((r) => r.person_ref))).toEqual(new Set(eligible.map((t) => t.personRef)));
    // Every voucher is in the read model as soon as the job is done (its chunk wrote its state at issue)...
    const inReadModel = Number((await db('vouchers').whereIn('voucher_no', db('issuance_rows').where({ list_id: listId }).whereNotNull('voucher_no').select('voucher_no')).count({ n: '*' }))[0]!.n);
    expect(inReadModel).toBe(eligible.length);
    // ...and each voucher workflow really runs: a sample of them takes its first workflow task.
    const sampled = issued.filter((_, k) => k % Math.max(1, Math.floor(issued.length / 50)) === 0);
    const until = Date.now() + 5 * 60_000;
    for (const r of sampled) {
      for (;;) {
        const d = await env.client.workflow.getHandle(voucherWorkflowId(r.voucher_no)).describe();
        if (d.historyLength > 2) break;
        if (Date.now() > until) throw new Error(`voucher ${r.voucher_no} has taken no workflow task`);
        await new Promise((res) => setTimeout(res, 500));
      }
    }
    const perPerson = await db('vouchers').whereIn('person_ref', eligible.slice(0, 500).map((t) => t.personRef)).select('person_ref').count({ n: '*' }).groupBy('person_ref');
    expect(perPerson.every((r) => Number(r.n) === 1)).toBe(true);
    const sample = await db('vouchers').where({ voucher_no: issued[0]!.voucher_no }).first();
    expect(sample).toMatchObject({ type: 'directed', issuer_district: '330602', occupation_code: '6-28-01', status: 'issued' });

    // Rejected rows, with their reasons, through the rows endpoint (masked ID, no names).
    const items: { rowNo: number; reasons: { code: string }[] }[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await request(app).get(`/v1/issuance-jobs/${listId}/rows`).query({ outcome: 'rejected', limit: 1000, offset }).set(bearer(hr));
      expect(page.status).toBe(200);
      expect(JSON.stringify(page.body)).not.toContain(trainees[3]!.idNumber);
      expect(JSON.stringify(page.body)).not.toContain(trainees[3]!.name);
      items.push(...page.body.items);
      if (page.body.items.length < 1000) break;
    }
    expect(items).toHaveLength(N + 4 - eligible.length);
    const byRow = new Map<number, string[]>(items.map((x) => [x.rowNo, x.reasons.map((r) => r.code)]));
    expect(byRow.get(4)).toEqual(['NO_LINK_TO_DISTRICT']);
    expect(byRow.get(8)).toEqual(['CIVIL_SERVICE_EXCLUDED']);
    expect(byRow.get(N + 1)).toEqual(['DUPLICATE_ROW']);
    expect(byRow.get(N + 2)).toEqual(['INVALID_ID_NUMBER']);
    expect(byRow.get(N + 3)).toEqual(['PERSON_NOT_REGISTERED']);
    expect(byRow.get(N + 4)).toEqual(['IDENTITY_MISMATCH']);
  });

  test('R2.5: a list\'s voucher does not project its state at issue again (its chunk wrote it); its first change reaches the read model', async () => {
    const [r] = await db('issuance_rows').where({ list_id: listId, outcome: 'issued' }).orderBy('row_no', 'desc').limit(1);
    const handle = env.client.workflow.getHandle(voucherWorkflowId(r.voucher_no));
    expect(r.voucher_input.projectedAtIssue).toBe(true);
    let events = (await handle.fetchHistory()).events ?? [];
    for (const until = Date.now() + 5 * 60_000; !events.some((e) => e.workflowTaskCompletedEventAttributes); ) {
      if (Date.now() > until) throw new Error(`voucher ${r.voucher_no} has taken no workflow task`);
      await new Promise((res) => setTimeout(res, 500));
      events = (await handle.fetchHistory()).events ?? [];
    }
    // Its first workflow task ran no projection (no local-activity marker) and upserted nothing.
    expect(events.filter((e) => e.markerRecordedEventAttributes || e.upsertWorkflowSearchAttributesEventAttributes)).toEqual([]);
    expect(await db('vouchers').where({ voucher_no: r.voucher_no }).first()).toMatchObject({ status: 'issued', revision: 0 });
    await handle.executeUpdate(claimUpdate, { args: [{ channel: 'zlb' }] });
    expect(await db('vouchers').where({ voucher_no: r.voucher_no }).first()).toMatchObject({ status: 'claimed', revision: 1, claim_channel: 'zlb' });
  });

  test('R2.5: re-uploading the same list issues nothing twice and answers the job; the same listId with other content → 409', async () => {
    const before = await counter();
    const again = await upload(inst, csv, meta());
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ listId, status: 'completed', total: N + 4 });
    const changed = await upload(inst, csvOf(trainees.slice(0, 10)), meta());
    expect(changed.status).toBe(409);
    expect(changed.body.code).toBe('LIST_ID_CONFLICT');
    const otherDistrict = await upload(inst, csv, { ...meta(), district: '330683' });
    expect(otherDistrict.status).toBe(409);
    expect(await counter()).toBe(before);
  });

  test('R2.5: a chunk re-run after a crash (rows already allocated and started, not yet marked) issues nothing twice', async () => {
    const rows = await db('issuance_rows').where({ list_id: listId, outcome: 'issued' }).orderBy('row_no').limit(5);
    await db('issuance_rows').whereIn('row_no', rows.map((r) => r.row_no)).where({ list_id: listId }).update({ outcome: 'pending' });
    const before = await counter();
    const h = await env.client.workflow.start('bulkIssuanceWorkflow', { workflowId: `IssuanceRerun:${listId}`, taskQueue, args: [{ listId, chunkSize: 200 }] });
    const until = Date.now() + 120_000;
    let p = await h.query(issuanceProgressQuery);
    while (p.status !== 'completed' && Date.now() < until) {
      await new Promise((res) => setTimeout(res, 300));
      p = await h.query(issuanceProgressQuery);
    }
    expect(p.issued).toBe(trainees.filter((t) => t.kind === 'eligible').length);
    expect(await counter()).toBe(before);
    const after = await db('issuance_rows').whereIn('row_no', rows.map((r) => r.row_no)).where({ list_id: listId }).orderBy('row_no');
    expect(after.map((r) => [r.outcome, r.voucher_no])).toEqual(rows.map((r) => ['issued', r.voucher_no]));
  });

  test('R2.5: the job is visible to its uploader and the HR of its district only', async () => {
    expect((await request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(hr))).status).toBe(200);
    expect((await request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(hrOther))).status).toBe(404);
    const otherInst = await keyFor(db, 'institution', { institutionId: await makeInstitution(db) });
    expect((await request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(otherInst))).status).toBe(404);
    expect((await request(app).get(`/v1/issuance-jobs/no-such-list`).set(bearer(hr))).status).toBe(404);
    const holder = await keyFor(db, 'holder', { personRef: trainees[0]!.personRef });
    expect((await request(app).get(`/v1/issuance-jobs/${listId}`).set(bearer(holder))).status).toBe(403);
  });

  test('R2.5: no ID number, name or phone of the list appears in the bulk workflow\'s history or in issued vouchers\' histories', async () => {
    const histories = [await env.client.workflow.getHandle(issuanceWorkflowId(listId)).fetchHistory()];
    const some = await db('issuance_rows').where({ list_id: listId, outcome: 'issued' }).orderBy('row_no').limit(3);
    for (const r of some) histories.push(await env.client.workflow.getHandle(`Voucher:${r.voucher_no}`).fetchHistory());
    const text = histories.map((h) => historyToJSON(h)).join('\n');
    expect(text.length).toBeGreaterThan(2_000);
    for (const t of [...trainees.slice(0, 20), extras.mismatch]) {
      for (const secret of [t.idNumber, t.name, t.phone]) expect(text).not.toContain(secret);
    }
  });
});

describe('trainee list uploads', () => {
  test('R2.5: HR lists a voucher issued from a list as soon as its chunk has started it, before its workflow has run', async () => {
    // The list as the upload stores it (rows pending), and the chunk run on a queue no worker polls: the
    // vouchers it starts never run a workflow task, so whatever the read model holds comes from the chunk.
    const idleQueue = uniqueTaskQueue('bulk-idle');
    const people = await insertPersons(3, () => 'eligible');
    const listId = uid('F');
    await db('trainee_lists').insert({ list_id: listId, uploader_principal: 'test', institution_id: instId, district: '330602', occupation_code: '6-28-01', content_hash: listId, total: 3 });
    await db('issuance_rows').insert(people.map((p, i) => ({ list_id: listId, row_no: i + 1, person_ref: p.personRef, id_last4: p.idNumber.slice(-4) })));
    const chunk = await new MockActivityEnvironment({ taskQueue: idleQueue }, { client: env.client }).run(
      createIssuanceActivities({ db: workerDb, now: () => Date.now() + SHIFT }).issueListChunk,
      { listId, fromRow: 1, toRow: 3 },
    );
    expect(chunk).toMatchObject({ issued: 3, rejected: 0 });
    const nos: string[] = (await db('issuance_rows').where({ list_id: listId, outcome: 'issued' }).orderBy('row_no').select('voucher_no')).map((r) => r.voucher_no);
    expect(nos).toHaveLength(3);
    try {
      for (const [k, no] of nos.entries()) {
        // Started, and not one workflow task taken (started + task scheduled).
        const d = await env.client.workflow.getHandle(voucherWorkflowId(no)).describe();
        expect(d.status.name).toBe('RUNNING');
        expect(d.historyLength).toBe(2);
        const listed = await request(app).get('/v1/vouchers').query({ personRef: people[k]!.personRef }).set(bearer(hr));
        expect(listed.status).toBe(200);
        expect(listed.body.items).toHaveLength(1);
        expect(listed.body.items[0]).toMatchObject({ voucherNo: no, type: 'directed', status: 'issued', issuerDistrict: '330602', occupationCode: '6-28-01' });
        expect(listed.body.items[0].claimDeadline).toEqual(expect.any(String));
        // The state at issue, exactly as the workflow's own first projection writes it (revision 0).
        const row = await db('vouchers').where({ voucher_no: no }).first();
        const input = (await db('issuance_rows').where({ list_id: listId, voucher_no: no }).first()).voucher_input;
        expect(row.revision).toBe(0);
        expect(row.snapshot).toEqual(JSON.parse(JSON.stringify(initialSnapshot(input))));
      }
    } finally {
      for (const no of nos) await env.client.workflow.getHandle(voucherWorkflowId(no)).terminate('test cleanup');
    }
  });

  test('R2.6: an industry department files a plan with HR and finance; once both acknowledge it, a JSON list under the plan is issued; duplicated rows are rejected per row as DUPLICATE_ROW', async () => {
    // Registered through the API as an industry department and approved (R4.1 holds for it too).
    const reg = await request(app).post('/v1/institutions').set(bearer(hr)).send({ name: '绍兴市经信局', district: '330602', kind: 'industry_department' });
    expect(reg.status).toBe(201);
    const deptId = reg.body.id as string;
    expect((await request(app).post(`/v1/institutions/${deptId}/approve`).set(bearer(hr)).send({})).status).toBe(200);
    const dept = await keyFor(db, 'institution', { institutionId: deptId });
    const finance = await keyFor(db, 'finance', { district: '330602' });
    const people = await insertPersons(3, () => 'eligible');
    const rows = [people[0]!, people[1]!, people[0]!, people[2]!, people[1]!].map(({ idNumber, name, phone }) => ({ idNumber, name, phone }));
    const listId = uid('J');
    const list = { listId, district: '330602', occupationCode: '2-02-10', rows };

    // No plan: refused, nothing stored.
    const noPlan = await request(app).post('/v1/trainee-lists').set(bearer(dept)).send(list);
    expect(noPlan.status).toBe(422);
    expect(noPlan.body).toMatchObject({ code: 'PLAN_REQUIRED', rule: 'R2.6' });

    const planId = uid('PLAN');
    const plan = { planId, district: '330602', occupationCode: '2-02-10', trainees: 5, subsidyStandardFen: 120_000, fundingSource: 'skills_upgrading_account', periodFrom: '2027-03-01', periodTo: '2027-06-30' };
    const filed = await request(app).post('/v1/training-plans').set(bearer(dept)).send(plan);
    expect(filed.status).toBe(201);
    expect(filed.body).toMatchObject({ planId, status: 'filed', trainees: 5, subsidyStandardFen: 120_000, hrAcknowledgedAt: null, financeAcknowledgedAt: null, listedTrainees: 0 });
    // Filing again: the same answer; other content under the id: 409.
    expect((await request(app).post('/v1/training-plans').set(bearer(dept)).send(plan)).status).toBe(200);
    const other = await request(app).post('/v1/training-plans').set(bearer(dept)).send({ ...plan, trainees: 500 });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('PLAN_ID_CONFLICT');
    // A training institution files no plans.
    const notDept = await request(app).post('/v1/training-plans').set(bearer(inst)).send({ ...plan, planId: uid('PLAN') });
    expect(notDept.status).toBe(403);
    expect(notDept.body).toMatchObject({ code: 'NOT_AN_INDUSTRY_DEPARTMENT', rule: 'R2.6' });

    // Filed but not acknowledged: lists are refused.
    const early = await request(app).post('/v1/trainee-lists').set(bearer(dept)).send({ ...list, planId });
    expect(early.status).toBe(422);
    expect(early.body).toMatchObject({ code: 'PLAN_NOT_ACKNOWLEDGED', rule: 'R2.6' });
    // HR and finance of the plan's district see it; another district's HR sees nothing (404).
    expect((await request(app).get(`/v1/training-plans/${planId}`).set(bearer(hrOther))).status).toBe(404);
    expect((await request(app).post(`/v1/training-plans/${planId}/acknowledge`).set(bearer(hrOther)).send()).status).toBe(404);
    const byHr = await request(app).post(`/v1/training-plans/${planId}/acknowledge`).set(bearer(hr)).send();
    expect(byHr.status).toBe(200);
    expect(byHr.body.status).toBe('filed');
    expect(byHr.body.hrAcknowledgedAt).toMatch(/\+08:00$/);
    const byFinance = await request(app).post(`/v1/training-plans/${planId}/acknowledge`).set(bearer(finance)).send();
    expect(byFinance.body).toMatchObject({ status: 'accepted' });
    const listed = await request(app).get('/v1/training-plans?status=accepted').set(bearer(finance));
    expect(listed.body.items.map((x: { planId: string }) => x.planId)).toContain(planId);

    // Under another occupation or district than the plan's: refused.
    const mismatch = await request(app).post('/v1/trainee-lists').set(bearer(dept)).send({ ...list, occupationCode: '9-99-99', planId });
    expect(mismatch.status).toBe(422);
    expect(mismatch.body).toMatchObject({ code: 'PLAN_MISMATCH', rule: 'R2.6' });
    expect(await db('trainee_lists').where({ list_id: listId })).toHaveLength(0);

    const res = await request(app).post('/v1/trainee-lists').set(bearer(dept)).send({ ...list, planId });
    expect(res.status).toBe(202);
    const done = await waitDone(dept, listId, 120_000);
    expect(done).toMatchObject({ total: 5, processed: 5, issued: 3, rejected: 2 });
    const jobRows = await request(app).get(`/v1/issuance-jobs/${listId}/rows`).set(bearer(dept));
    expect(jobRows.body.items.map((x: { rowNo: number; outcome: string; reasons: { code: string; rule: string }[] }) => [x.rowNo, x.outcome, x.reasons.map((r) => `${r.code}/${r.rule}`)])).toEqual([
      [1, 'issued', []],
      [2, 'issued', []],
      [3, 'rejected', ['DUPLICATE_ROW/R2.6']],
      [4, 'issued', []],
      [5, 'rejected', ['DUPLICATE_ROW/R2.6']],
    ]);
    expect(jobRows.body.items.filter((x: { voucherNo: string | null }) => x.voucherNo).length).toBe(3);
    // The same rows through the cursor, two at a time.
    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const pg: request.Response = await request(app).get(`/v1/issuance-jobs/${listId}/rows`).query({ limit: 2, ...(cursor ? { cursor } : {}) }).set(bearer(dept));
      paged.push(...pg.body.items.map((x: { rowNo: number }) => x.rowNo));
      cursor = pg.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual([1, 2, 3, 4, 5]);
    expect((await request(app).get(`/v1/training-plans/${planId}`).set(bearer(dept))).body.listedTrainees).toBe(5);

    // The plan covers 5 trainees and its lists already name 5: one more list is refused, nothing stored.
    const more = await insertPersons(1, () => 'eligible');
    const overId = uid('J');
    const over = await request(app).post('/v1/trainee-lists').set(bearer(dept)).send({ listId: overId, district: '330602', occupationCode: '2-02-10', planId, rows: more.map(({ idNumber, name, phone }) => ({ idNumber, name, phone })) });
    expect(over.status).toBe(422);
    expect(over.body).toMatchObject({ code: 'PLAN_TRAINEES_EXCEEDED', rule: 'R2.6' });
    expect(await db('trainee_lists').where({ list_id: overId })).toHaveLength(0);
  });

  test('R2.5: Idempotency-Key covers a CSV body: the same key and list answer the first response; the same key with another CSV → 409 and nothing stored', async () => {
    const people = await insertPersons(2, () => 'eligible');
    const q = { listId: uid('K'), district: '330602', occupationCode: '3-01-01' };
    const first = await upload(inst, csvOf(people), q).set('Idempotency-Key', 'csv-1');
    expect(first.status).toBe(202);
    const again = await upload(inst, csvOf(people), q).set('Idempotency-Key', 'csv-1');
    expect(again.status).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const otherList = { ...q, listId: uid('K') };
    const other = await upload(inst, csvOf(people.slice(0, 1)), q).set('Idempotency-Key', 'csv-1');
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const otherQuery = await upload(inst, csvOf(people), otherList).set('Idempotency-Key', 'csv-1');
    expect(otherQuery.status).toBe(409);
    expect(await db('trainee_lists').where({ list_id: otherList.listId })).toHaveLength(0);
    await waitDone(inst, q.listId, 120_000);
  });

  test('R4.1 R2.5: a pending or suspended institution, or another role, cannot upload; nothing is stored', async () => {
    const people = await insertPersons(1, () => 'eligible');
    for (const status of ['pending', 'suspended']) {
      const key = await keyFor(db, 'institution', { institutionId: await makeInstitution(db, status) });
      const listId = uid('P');
      const r = await upload(key, csvOf(people), { listId, district: '330602', occupationCode: '1-01' });
      expect(r.status).toBe(422);
      expect(r.body).toMatchObject({ code: 'INSTITUTION_NOT_APPROVED', rule: 'R4.1' });
      expect(await db('trainee_lists').where({ list_id: listId })).toHaveLength(0);
    }
    expect((await upload(hr, csvOf(people), { listId: uid('P'), district: '330602', occupationCode: '1-01' })).status).toBe(403);
  });

  test('R2.5: a CSV missing a column → 400, bad query parameters → 400, more than 50 MB → 413; nothing stored', async () => {
    const people = await insertPersons(2, () => 'eligible');
    const listId = uid('C');
    const noPhone = await upload(inst, ['idNumber,name', ...people.map((p) => `${p.idNumber},${p.name}`)].join('\n'), { listId, district: '330602', occupationCode: '1-01' });
    expect(noPhone.status).toBe(400);
    expect(noPhone.body.code).toBe('CSV_MISSING_COLUMN');
    expect(noPhone.body.detail).toContain('phone');
    const badDistrict = await upload(inst, csvOf(people), { listId, district: '110101', occupationCode: '1-01' });
    expect(badDistrict.status).toBe(400);
    const big = 'idNumber,name,phone\n' + `${people[0]!.idNumber},${'x'.repeat(60)},13000000000\n`.repeat(Math.ceil((50 * 1024 * 1024) / 90) + 1000);
    expect(big.length).toBeGreaterThan(50 * 1024 * 1024);
    const tooBig = await upload(inst, big, { listId, district: '330602', occupationCode: '1-01' });
    expect(tooBig.status).toBe(413);
    expect(await db('trainee_lists').where({ list_id: listId })).toHaveLength(0);
  });
});
