/**
 * Time-skipping flows of the training area: a whole class of 20 sessions from listing through holder
 * QR + geolocated check-ins to completion and settlement (R3.10, R4.2), and the strike register with
 * rectification and re-approval (R4.4).
 */
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Express } from 'express';
import { createTrainingActivities } from '../activities/training-activities';
import type { Db } from '../db/connection';
import { localIso } from '../policy/calendar';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { stateQuery } from '../workflows/voucher/messages';
import { approvedInstitutionViaApi, bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { testPii } from './helpers/env';
import { eventually, timeSkippingWorld, type World } from './helpers/world';
import { makeCatalogueEntry, makeInstitution, makePerson, uniqueOccupation, type PersonFixture } from './helpers/fixtures';

const DAY = 86_400_000;
const MIN = 60_000;
const VENUE = { lat: 29.9986, lng: 120.5822 };
const iso = (ms: number) => localIso(ms, 'Asia/Shanghai');

let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let app: Express;
let clock = 0;
let hr: string;
let operator: string;

beforeAll(async () => {
  world = await timeSkippingWorld('training-flow');
  ({ env, db } = world);
  clock = await env.currentTimeMs();
  app = testApp(db, env.client, world.taskQueue, () => clock);
  hr = await keyFor(db, 'hr', { district: '330602' });
  operator = await keyFor(db, 'operator');
});

afterAll(async () => {
  await world?.stop();
});

async function syncClock(): Promise<number> {
  clock = await env.currentTimeMs();
  return clock;
}

const approvedInstitution = () => approvedInstitutionViaApi(app, db, { operator, hr }, { name: 'Yuecheng Vocational School' });

async function activatedVoucher(occupationCode: string, given?: PersonFixture) {
  const person = given ?? (await makePerson(db, testPii));
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  const issued = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode });
  expect(issued.status).toBe(201);
  const voucherNo = issued.body.voucherNo as string;
  await claimVoucher(app, voucherNo, person, holder);
  expect((await request(app).post(`/v1/vouchers/${voucherNo}/activate`).set(bearer(holder)).send({})).status).toBe(200);
  return { holder, voucherNo };
}

describe('a whole class (R3.10, R4.2)', () => {
  test('R3.10 R4.2 R3.5: 20 sessions of unequal length; trainees at 59%, 60% and 100% check-in by QR + geolocation; 60% and 100% settle, 59% is rejected', async () => {
    const occ = uniqueOccupation();
    const inst = await approvedInstitution();
    const t0 = await syncClock();
    // 18 sessions of 50 minutes, one of 40 and one of 60: 1000 minutes, so 590 (59%) and 600 (60%) are exact.
    const minutes = [...Array<number>(18).fill(50), 40, 60];
    const sessions = minutes.map((m, k) => ({
      sessionId: `S${String(k + 1).padStart(2, '0')}`,
      startsAt: t0 + (k + 3) * DAY + 60 * MIN,
      endsAt: t0 + (k + 3) * DAY + 60 * MIN + 90 * MIN,
      minutes: m,
    }));
    const people = [await makePerson(db, testPii), await makePerson(db, testPii), await makePerson(db, testPii)];
    const created = await request(app)
      .post('/v1/classes')
      .set(bearer(inst.key))
      .send({
        occupationCode: occ,
        level: '4',
        trainingKind: 'certificate',
        mode: 'offline',
        venue: VENUE,
        capacity: 20,
        sessions: sessions.map((s) => ({ sessionId: s.sessionId, startsAt: iso(s.startsAt), endsAt: iso(s.endsAt), minutes: s.minutes })),
        roster: people.map((p) => p.idNumber),
      });
    expect(created.status).toBe(201);
    const classId = created.body.classId as string;
    await makeCatalogueEntry(db, { occupationCode: occ, level: '4', amountFen: 240_000 });

    // The holders find the class in the marketplace (R3.6) and enrol with the institution (R3.7).
    const listed = await request(app).get('/v1/classes').query({ occupationCode: occ }).set(bearer(hr));
    expect(listed.body.items).toEqual([expect.objectContaining({ classId, seatsLeft: 20, totalMinutes: 1000, sessionCount: 20 })]);
    const trainees = [];
    for (const p of people) {
      const v = await activatedVoucher(occ, p);
      const en = await request(app).post(`/v1/vouchers/${v.voucherNo}/enrol`).set(bearer(inst.key)).send({ classId, review: { passed: true } });
      expect(en.status).toBe(200);
      trainees.push(v);
    }
    const [at59, at60, at100] = trainees as [(typeof trainees)[0], (typeof trainees)[0], (typeof trainees)[0]];
    const ids = sessions.map((s) => s.sessionId);
    const attends = new Map([
      [at59.voucherNo, new Set([...ids.slice(0, 11), 'S19'])], // 11·50 + 40 = 590
      [at60.voucherNo, new Set(ids.slice(0, 12))], // 12·50 = 600
      [at100.voucherNo, new Set(ids)],
    ]);

    for (const s of sessions) {
      // The worker's clock moves to the session, and the API's with it.
      await env.sleep(s.startsAt + 5 * MIN - (await env.currentTimeMs()));
      await syncClock();
      const code = await request(app).get(`/v1/classes/${classId}/sessions/${s.sessionId}/qr`).set(bearer(inst.key));
      expect(code.status).toBe(200);
      for (const v of trainees) {
        if (!attends.get(v.voucherNo)!.has(s.sessionId)) continue;
        const r = await request(app)
          .post('/v1/check-ins')
          .set(bearer(v.holder))
          .send({ voucherNo: v.voucherNo, sessionId: s.sessionId, token: code.body.token, lat: VENUE.lat + 0.0004, lng: VENUE.lng - 0.0003 });
        expect(r.status).toBe(202);
      }
    }
    const rate = (no: string) => env.client.workflow.getHandle(voucherWorkflowId(no)).query(stateQuery);
    expect((await eventually(() => rate(at59.voucherNo), (s) => s.attendedMinutes === 590)).checkInRate).toBe(59);
    expect((await eventually(() => rate(at60.voucherNo), (s) => s.attendedMinutes === 600)).checkInRate).toBe(60);
    expect((await eventually(() => rate(at100.voucherNo), (s) => s.attendedMinutes === 1000)).checkInRate).toBe(100);

    await env.sleep(sessions[19]!.endsAt + MIN - (await env.currentTimeMs()));
    await syncClock();
    const done = await request(app)
      .post(`/v1/classes/${classId}/completion`)
      .set(bearer(inst.key))
      .send({ results: trainees.map((v) => ({ voucherNo: v.voucherNo, assessmentPassed: true })) });
    expect(done.status).toBe(202);

    // Poll with queries (no time skipping) until every voucher has settled one way or the other.
    const result = (no: string) =>
      eventually(() => env.client.workflow.getHandle(voucherWorkflowId(no)).query(stateQuery), (s) => s.status === 'settled' || s.status === 'rejected', 30_000);
    const [r59, r60, r100] = await Promise.all([result(at59.voucherNo), result(at60.voucherNo), result(at100.voucherNo)]);
    expect(r59.status).toBe('rejected');
    expect(r59.settlement).toMatchObject({ outcome: 'rejected', reason: 'CHECK_IN_RATE_BELOW_THRESHOLD', rule: 'R3.10' });
    expect(r60.status).toBe('settled');
    expect(r100.status).toBe('settled');
    expect(r60.settlement).toMatchObject({ outcome: 'approved', amountFen: 240_000, payeeType: 'institution', payeeRef: inst.id });
    const paid = await db('disbursements').whereIn('voucher_no', trainees.map((v) => v.voucherNo)).orderBy('voucher_no');
    expect(paid.map((x: { voucher_no: string }) => x.voucher_no).sort()).toEqual([at60.voucherNo, at100.voucherNo].sort());
    const accepted = await db('check_in_attempts').whereIn('voucher_no', trainees.map((v) => v.voucherNo)).where({ verdict: 'accepted' });
    expect(accepted).toHaveLength(12 + 12 + 20);
    const view = await eventually(() => request(app).get(`/v1/classes/${classId}/completion`).set(bearer(hr)), (r) => r.body.done === true);
    expect(view.body.trainees.map((x: { outcome: string }) => x.outcome)).toEqual(['signalled', 'signalled', 'signalled']);
  });
});

/** The API of a deployment whose Temporal frontend is unreachable: a real client with nothing listening and no client retries. */
async function withTemporalDown(body: (apiDown: Express) => Promise<void>): Promise<void> {
  const down = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', interceptors: [] }) });
  try {
    await body(testApp(db, down, world.taskQueue, () => clock));
  } finally {
    await down.connection.close();
  }
}

describe('strike register (R4.4)', () => {
  test('R4.4: the status activities are idempotent: a retry changes nothing more', async () => {
    const acts = createTrainingActivities({ db });
    const id = await makeInstitution(db);
    expect(await acts.trainingPutUnderRectification({ institutionId: id, kind: 'quality' })).toEqual({ status: 'rectification' });
    expect(await acts.trainingPutUnderRectification({ institutionId: id, kind: 'quality' })).toEqual({ status: 'rectification' });
    expect(await acts.trainingReapproveInstitution({ institutionId: id, strikeIds: [], by: 'hr-x' })).toEqual({ status: 'approved' });
    expect(await acts.trainingReapproveInstitution({ institutionId: id, strikeIds: [], by: 'hr-x' })).toEqual({ status: 'approved' });
    const pending = await makeInstitution(db, 'pending');
    expect(await acts.trainingPutUnderRectification({ institutionId: pending, kind: 'lax_review' })).toEqual({ status: 'pending' });
  });

  test('R4.4: strikes expire after the window; three of one kind within it put the institution under rectification; re-approval restores enrolment', async () => {
    const inst = await approvedInstitution();
    const occ = uniqueOccupation();
    const strike = (kind: 'lax_review' | 'quality') =>
      request(app).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)).send({ kind, evidence: 'spot check found unsigned attendance sheets' });
    const register = () => request(app).get(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr));
    const status = async () => (await db('institutions').where({ id: inst.id }).first()).status as string;

    // Reapproval of an institution not under rectification is refused.
    const early = await request(app).post(`/v1/institutions/${inst.id}/reapprove`).set(bearer(hr)).send({});
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ code: 'INSTITUTION_NOT_UNDER_RECTIFICATION', rule: 'R4.4' });
    const badKind = await request(app).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)).send({ kind: 'late', evidence: 'x' });
    expect(badKind.status).toBe(400);
    expect((await request(app).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(inst.key)).send({ kind: 'quality', evidence: 'x' })).status).toBe(403);

    // Two quality strikes, then 12 months pass: they expire, and a third alone does not rectify.
    expect((await strike('quality')).status).toBe(202);
    expect((await strike('quality')).status).toBe(202);
    expect((await eventually(register, (r) => r.body.counts?.quality === 2)).body.counts).toEqual({ lax_review: 0, quality: 2 });
    await env.sleep('366 days');
    await syncClock();
    expect((await eventually(register, (r) => r.body.counts?.quality === 0)).body.counts.quality).toBe(0);
    expect((await strike('quality')).status).toBe(202);
    await strike('lax_review');
    await strike('lax_review');
    const mixed = await eventually(register, (r) => r.body.strikes?.length === 3);
    expect(mixed.body.counts).toEqual({ lax_review: 2, quality: 1 });
    expect(mixed.body.status).toBe('approved');
    expect(await status()).toBe('approved');

    // A class with an enrolled trainee before the third strike of a kind: that enrolment stays.
    const t0 = await syncClock();
    const cls = await request(app)
      .post('/v1/classes')
      .set(bearer(inst.key))
      .send({
        occupationCode: occ,
        level: '4',
        trainingKind: 'project',
        mode: 'online',
        capacity: 10,
        sessions: [{ sessionId: 'S01', startsAt: iso(t0 + 10 * DAY), endsAt: iso(t0 + 10 * DAY + 60 * MIN), minutes: 60 }],
        roster: [],
      });
    expect(cls.status).toBe(201);
    const classId = cls.body.classId as string;
    const before = await activatedVoucher(occ);
    expect((await request(app).post(`/v1/vouchers/${before.voucherNo}/enrol`).set(bearer(inst.key)).send({ classId, review: { passed: true } })).status).toBe(200);

    // Third lax review within the window → rectification.
    expect((await strike('lax_review')).status).toBe(202);
    const rect = await eventually(register, (r) => r.body.status === 'rectification');
    expect(rect.body.status).toBe('rectification');
    expect(rect.body.rectifiedAt).not.toBeNull();
    expect(await status()).toBe('rectification');
    const blocked = await activatedVoucher(occ);
    const refused = await request(app).post(`/v1/vouchers/${blocked.voucherNo}/enrol`).set(bearer(inst.key)).send({ classId, review: { passed: true } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'INSTITUTION_UNDER_RECTIFICATION', rule: 'R4.4' });
    expect((await env.client.workflow.getHandle(voucherWorkflowId(before.voucherNo)).query(stateQuery)).status).toBe('in_training');
    expect(await db('enrolments').where({ voucher_no: before.voucherNo })).toHaveLength(1);

    // Re-approval with Temporal unreachable: refused whole (503), no approval recorded.
    await withTemporalDown(async (apiDown) => {
      const refused = await request(apiDown).post(`/v1/institutions/${inst.id}/reapprove`).set(bearer(hr)).send({});
      expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 503, code: 'TEMPORAL_UNAVAILABLE' });
      expect(await db('institution_approvals').where({ institution_id: inst.id, kind: 'reapprove' })).toHaveLength(0);
    });
    // Re-approval (HR) → approved again, strikes cleared, enrolment works.
    expect((await request(app).post(`/v1/institutions/${inst.id}/reapprove`).set(bearer(hr)).send({})).status).toBe(202);
    const back = await eventually(register, (r) => r.body.status === 'approved');
    expect(back.body.status).toBe('approved');
    expect(back.body.strikes).toEqual([]);
    expect(await status()).toBe('approved');
    expect((await db('institution_strikes').where({ institution_id: inst.id }).whereNotNull('cleared_at')).length).toBe(4);
    const ok = await request(app).post(`/v1/vouchers/${blocked.voucherNo}/enrol`).set(bearer(inst.key)).send({ classId, review: { passed: true } });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('in_training');
    const wf = await env.client.workflow.getHandle(`Institution:${inst.id}`).describe();
    expect(wf.type).toBe('institutionWorkflow');
    expect(wf.status.name).toBe('RUNNING');
    // One more strike after re-approval counts from zero.
    await strike('lax_review');
    const fresh = await eventually(register, (r) => r.body.strikes?.length === 1);
    expect(fresh.body.counts).toEqual({ lax_review: 1, quality: 0 });
    expect(await status()).toBe('approved');
  });

  test('R4.4: a strike the institution workflow cannot be told of is not recorded either (503, no register row); the retry records and counts it once', async () => {
    const inst = await approvedInstitution();
    await withTemporalDown(async (apiDown) => {
      const refused = await request(apiDown).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)).send({ kind: 'quality', evidence: 'unsigned attendance sheets' });
      expect({ status: refused.status, code: refused.body.code, retryAfter: refused.headers['retry-after'] }).toEqual({ status: 503, code: 'TEMPORAL_UNAVAILABLE', retryAfter: '5' });
      expect(await db('institution_strikes').where({ institution_id: inst.id })).toHaveLength(0);
    });
    const ok = await request(app).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)).send({ kind: 'quality', evidence: 'unsigned attendance sheets' });
    expect(ok.status).toBe(202);
    const counted = await eventually(
      () => request(app).get(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)),
      (r) => r.body.strikes?.length === 1,
    );
    expect(counted.body.strikes.map((x: { strikeId: string }) => x.strikeId)).toEqual([ok.body.strikeId]);
    expect((await db('institution_strikes').where({ institution_id: inst.id })).map((x: { id: string }) => x.id)).toEqual([ok.body.strikeId]);
  });

  test('R4.4: a strike sent with an Idempotency-Key keeps its ID when the request runs again (its first answer lost), so the workflow counts it once', async () => {
    const inst = await approvedInstitution();
    const send = () =>
      request(app).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)).set('Idempotency-Key', `strike-${inst.id}`).send({ kind: 'lax_review', evidence: 'review missing for 3 trainees' });
    const first = await send();
    expect(first.status).toBe(202);
    // As after a 5xx, or a first run abandoned before its answer was stored: the key is free, the request runs again.
    await db('idempotency_keys').where({ key: `strike-${inst.id}` }).del();
    const rerun = await send();
    expect(rerun.status).toBe(202);
    expect(rerun.headers['idempotent-replayed']).toBeUndefined();
    expect(rerun.body.strikeId).toBe(first.body.strikeId);
    expect(first.body.strikeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const register = await eventually(
      () => request(app).get(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)),
      (r) => r.body.strikes?.length >= 1,
    );
    expect(register.body.counts).toEqual({ lax_review: 1, quality: 0 });
    expect(await db('institution_strikes').where({ institution_id: inst.id })).toHaveLength(1);
    // Another key (or none) is another strike.
    expect((await request(app).post(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)).send({ kind: 'lax_review', evidence: 'another review missing' })).status).toBe(202);
    expect((await eventually(() => request(app).get(`/v1/institutions/${inst.id}/strikes`).set(bearer(hr)), (r) => r.body.strikes?.length === 2)).body.counts.lax_review).toBe(2);
  });
});
