/**
 * Search attributes are upserted on each state change, but only those whose value changed: the start
 * carries the first ones, a check-in upserts `CheckInRate` alone (PERFORMANCE.md §1: every upsert is a
 * history event and a visibility write). Vouchers started before the input flag keep upserting the
 * whole set. Both through the API and the time-skipping server with the real policy.
 */
import request from 'supertest';
import type { Express } from 'express';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { createApp } from '../api/app';
import { buildVoucherInput } from '../api/voucher-input';
import { startVoucherWorkflow } from '../activities/issuance-activities';
import type { Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate } from '../workflows/voucher/messages';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../workflows/voucher/search-attributes';
import { bearer, claimVoucher, keyFor } from './helpers/api';
import { testCodecKeys, testPii } from './helpers/env';
import { timeSkippingWorld, type World } from './helpers/world';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation } from './helpers/fixtures';

const EventType = temporal.api.enums.v1.EventType;
type History = temporal.api.history.v1.IHistory;

const MINUTES = 90;
let world: World;
let env: TestWorkflowEnvironment;
let db: Db;
let app: Express;

beforeAll(async () => {
  world = await timeSkippingWorld('sa-change');
  ({ env, db } = world);
  app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue: world.taskQueue, codecKeys: testCodecKeys });
});

afterAll(async () => {
  await world?.stop();
});

/** The keys of each upsert in history, in order, each list sorted. */
function upserts(h: History): string[][] {
  return (h.events ?? [])
    .filter((e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    .map((e) => Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}).sort());
}

async function classWithCatalogue(sessions: number) {
  const occ = uniqueOccupation();
  const institutionId = await makeInstitution(db);
  const cls = await makeClass(db, { institutionId, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions, minutes: MINUTES });
  await makeCatalogueEntry(db, { occupationCode: occ, level: cls.level, amountFen: 120_000 });
  return { occ, institutionId, cls };
}

/** Until the read model shows `minutes` attended (each check-in projected before the next is sent). */
async function projected(voucherNo: string, minutes: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const row = await db('vouchers').where({ voucher_no: voucherNo }).first('attended_minutes');
    if (row && Number(row.attended_minutes) >= minutes) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${voucherNo}: ${minutes} minutes never projected`);
}

test('R3.10 a voucher issued through the API upserts only the search attributes that changed: none at issue, CheckInRate alone per check-in', async () => {
  const person = await makePerson(db, testPii, { employmentDistrict: '330602' });
  const { occ, institutionId, cls } = await classWithCatalogue(4);
  const hr = await keyFor(db, 'hr', { district: '330602' });
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  const inst = await keyFor(db, 'institution', { institutionId });
  const issued = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode: occ }).expect(201);
  const no: string = issued.body.voucherNo;
  await claimVoucher(app, no, person, holder, 'alipay');
  await request(app).post(`/v1/vouchers/${no}/activate`).set(bearer(holder)).send({}).expect(200);
  await request(app).post(`/v1/vouchers/${no}/enrol`).set(bearer(inst)).send({ classId: cls.classId, review: { passed: true } }).expect(200);
  let minutes = 0;
  for (const s of cls.sessionIds.slice(0, 3)) {
    const r = await request(app).post(`/v1/vouchers/${no}/check-ins`).set(bearer(inst)).send({ sessionId: s }).expect(202);
    expect(r.body.counted).toBe(true);
    minutes += MINUTES;
    await projected(no, minutes);
  }
  await request(app).post(`/v1/vouchers/${no}/complete`).set(bearer(inst)).send({ assessmentPassed: true }).expect(202);
  const h = env.client.workflow.getHandle(voucherWorkflowId(no));
  expect((await h.result()).status).toBe('settled');

  expect(upserts(await h.fetchHistory())).toEqual([
    ['ActivationDeadline', 'VoucherStatus'], // claimed: the activation clock starts (R2.7, R3.1)
    ['UseDeadline', 'VoucherStatus'], // activated (R3.2)
    ['CheckInRate', 'InstitutionId', 'VoucherStatus'], // in training, rate 0
    ['CheckInRate'],
    ['CheckInRate'],
    ['CheckInRate'], // one per check-in, nothing else
    ['VoucherStatus'], // completed
    ['VoucherStatus'], // settled
  ]);
  // What the visibility record holds in the end is the whole, current set.
  const sa = (await h.describe()).typedSearchAttributes;
  const get = (name: string) => sa.get(ALL_SEARCH_ATTRIBUTE_KEYS.find((k) => k.name === name)!);
  expect(get('VoucherStatus')).toBe('settled');
  expect(get('CheckInRate')).toBe(75); // 3 of 4 sessions (R3.10)
  expect(get('InstitutionId')).toBe(institutionId);
  expect(get('OccupationCode')).toBe(occ);
  expect(get('IssuerDistrict')).toBe('330602');
  expect(get('VoucherType')).toBe('directed');
  expect(get('UseDeadline')).toBeInstanceOf(Date);
  expect(get('ActivationDeadline')).toBeInstanceOf(Date);
});

test('R3.10 a voucher started before the flag (input without searchAttributesOnChange) still upserts the whole set on every publication', async () => {
  const person = await makePerson(db, testPii);
  const { occ, institutionId, cls } = await classWithCatalogue(2);
  const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: '330602', personRef: person.personRef, occupationCode: occ, obtainedAt: await env.currentTimeMs() });
  delete input.searchAttributesOnChange;
  const h = await startVoucherWorkflow(env.client, world.taskQueue, input);
  await h.executeUpdate(activateUpdate, { args: [{}] });
  await h.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId, review: { passed: true } }] });
  await h.signal(checkInSignal, { sessionId: cls.sessionIds[0]!, verifiedMinutes: MINUTES, at: 0 });
  await projected(input.voucherNo, MINUTES);
  await h.signal(completeSignal, { assessmentPassed: false });
  expect((await h.result()).status).toBe('rejected');
  const all = upserts(await h.fetchHistory());
  expect(all.length).toBeGreaterThanOrEqual(5); // issued, activated, in training, a check-in, completed, rejected
  // Every publication carries the whole set (from training on: all eight).
  expect(all[0]).toEqual(['ActivationDeadline', 'CheckInRate', 'IssuerDistrict', 'OccupationCode', 'VoucherStatus', 'VoucherType']);
  for (const keys of all.slice(2)) expect(keys).toEqual(ALL_SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).sort());
});
