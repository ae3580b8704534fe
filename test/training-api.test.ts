/**
 * Training delivery through the HTTP API over a real worker (time-skipping server) and PostgreSQL:
 * institutions and approval (R4.1), classes with plan and roster (R3.5, R4.2), course search (R3.6),
 * QR + geolocated check-ins and online learning time with every refusal (R3.10), class completion (R4.2).
 */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Express } from 'express';
import type { Db } from '../db/connection';
import { localIso } from '../policy/calendar';
import { POLICY_VERSIONS } from '../policy/policy';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { stateQuery } from '../workflows/voucher/messages';
import { approvedInstitutionViaApi, bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { testPii } from './helpers/env';
import { eventually, timeSkippingWorld, type World } from './helpers/world';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation, type PersonFixture } from './helpers/fixtures';

const DAY = 86_400_000;
const MIN = 60_000;
const POLICY = POLICY_VERSIONS[0]!;
const VENUE = { lat: 30.0, lng: 120.58 };
const iso = (ms: number) => localIso(ms, 'Asia/Shanghai');

let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let app: Express;
/** The API's clock: pinned by each test to the instant it acts at. */
let clock = 0;
let hr: string;
let hrOther: string;
let operator: string;

beforeAll(async () => {
  world = await timeSkippingWorld('training-api');
  ({ env, db } = world);
  clock = await env.currentTimeMs();
  app = testApp(db, env.client, world.taskQueue, () => clock);
  hr = await keyFor(db, 'hr', { district: '330602' });
  hrOther = await keyFor(db, 'hr', { district: '330683' });
  operator = await keyFor(db, 'operator');
});

afterAll(async () => {
  await world?.stop();
});

async function syncClock(): Promise<number> {
  clock = await env.currentTimeMs();
  return clock;
}

const approvedInstitution = () => approvedInstitutionViaApi(app, db, { operator, hr }, { name: 'Shaoxing Skills School' });

interface SessionSpec {
  sessionId: string;
  startsAt: number;
  endsAt: number;
  minutes: number;
}

function dailySessions(first: number, n: number, minutes = 90): SessionSpec[] {
  return Array.from({ length: n }, (_, k) => ({
    sessionId: `S${String(k + 1).padStart(2, '0')}`,
    startsAt: first + k * DAY,
    endsAt: first + k * DAY + minutes * MIN,
    minutes,
  }));
}

async function createClass(
  instKey: string,
  o: { occupationCode?: string; mode?: 'online' | 'offline'; sessions: SessionSpec[]; roster?: string[]; capacity?: number; level?: string },
) {
  const res = await request(app)
    .post('/v1/classes')
    .set(bearer(instKey))
    .send({
      occupationCode: o.occupationCode ?? uniqueOccupation(),
      level: o.level ?? '4',
      trainingKind: 'certificate',
      mode: o.mode ?? 'offline',
      ...((o.mode ?? 'offline') === 'offline' ? { venue: VENUE } : {}),
      capacity: o.capacity ?? 30,
      sessions: o.sessions.map((s) => ({ sessionId: s.sessionId, startsAt: iso(s.startsAt), endsAt: iso(s.endsAt), minutes: s.minutes })),
      roster: o.roster ?? [],
    });
  expect(res.status).toBe(201);
  return res.body as { classId: string; occupationCode: string };
}

interface Trainee {
  person: PersonFixture;
  holder: string;
  voucherNo: string;
}

/** Issues (HR), claims and activates (holder) and, when a class is given, enrols (institution) a directed voucher. */
async function trainee(occupationCode: string, enrol?: { classId: string; instKey: string }): Promise<Trainee> {
  const person = await makePerson(db, testPii);
  const holder = await keyFor(db, 'holder', { personRef: person.personRef });
  const issued = await request(app).post('/v1/vouchers').set(bearer(hr)).send({ type: 'directed', idNumber: person.idNumber, occupationCode });
  expect(issued.status).toBe(201);
  const voucherNo = issued.body.voucherNo as string;
  await claimVoucher(app, voucherNo, person, holder);
  expect((await request(app).post(`/v1/vouchers/${voucherNo}/activate`).set(bearer(holder)).send({})).status).toBe(200);
  if (enrol) {
    const r = await request(app).post(`/v1/vouchers/${voucherNo}/enrol`).set(bearer(enrol.instKey)).send({ classId: enrol.classId, review: { passed: true } });
    expect(r.status).toBe(200);
  }
  return { person, holder, voucherNo };
}

async function qr(instKey: string, classId: string, sessionId: string): Promise<string> {
  const r = await request(app).get(`/v1/classes/${classId}/sessions/${sessionId}/qr`).set(bearer(instKey));
  expect(r.status).toBe(200);
  return r.body.token as string;
}

const checkIn = (t: Trainee, sessionId: string, token: string, at = VENUE) =>
  request(app).post('/v1/check-ins').set(bearer(t.holder)).send({ voucherNo: t.voucherNo, sessionId, token, lat: at.lat, lng: at.lng });

const state = (voucherNo: string) => env.client.workflow.getHandle(voucherWorkflowId(voucherNo)).query(stateQuery);

describe('institutions (R4.1)', () => {
  test('R4.1 R3.13: an application (its account audited) is pending until HR of any district approves it; the approving district is recorded; a pending institution cannot list classes', async () => {
    const reg = await request(app).post('/v1/institutions').set(bearer(hr)).send({ name: 'Keqiao Training Centre', district: '330603', bankAccount: '6222000011112222' });
    expect(reg.status).toBe(201);
    expect(reg.body.status).toBe('pending');
    const id = reg.body.id as string;
    // R3.13: the account given at registration is audited (masked), like every later correction.
    expect(await db('account_changes').where({ institution_id: id })).toEqual([expect.objectContaining({ old_masked: null, new_masked: '************2222' })]);
    const instKey = await keyFor(db, 'institution', { institutionId: id });
    const first = await syncClock();
    const early = await request(app)
      .post('/v1/classes')
      .set(bearer(instKey))
      .send({ occupationCode: '4-01-01', level: '4', trainingKind: 'project', mode: 'online', capacity: 5, sessions: [{ sessionId: 'S01', startsAt: iso(first + DAY), endsAt: iso(first + DAY + 60 * MIN), minutes: 60 }], roster: [] });
    expect(early.status).toBe(422);
    expect(early.body).toMatchObject({ code: 'INSTITUTION_NOT_APPROVED', rule: 'R4.1' });
    expect(await db('classes').where({ institution_id: id })).toHaveLength(0);

    // Roles: a holder cannot register an institution, an institution cannot approve.
    const holder = await keyFor(db, 'holder', { personRef: 'Pnobody' });
    expect((await request(app).post('/v1/institutions').set(bearer(holder)).send({ name: 'x', district: '330602' })).status).toBe(403);
    expect((await request(app).post(`/v1/institutions/${id}/approve`).set(bearer(instKey)).send({})).status).toBe(403);

    // HR of another district approves; the approval holds city-wide.
    const ok = await request(app).post(`/v1/institutions/${id}/approve`).set(bearer(hrOther)).send({});
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', approvedBy: '330683' });
    const again = await request(app).post(`/v1/institutions/${id}/approve`).set(bearer(hr)).send({});
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('INSTITUTION_NOT_PENDING');
    const view = await request(app).get(`/v1/institutions/${id}`).set(bearer(instKey));
    expect(view.body.approvals).toEqual([expect.objectContaining({ kind: 'approve', district: '330683' })]);
    const row = await db('institutions').where({ id }).first();
    expect(row.bank_account_enc).not.toContain('6222000011112222');
    expect((await request(app).post(`/v1/institutions/INSTNOPE/approve`).set(bearer(hr)).send({})).status).toBe(404);
  });
});

describe('classes (R3.5, R4.2)', () => {
  test('R3.5 R4.2: an approved institution lists an offline class with plan and roster (ID numbers stored only as person_ref); bad plans are refused and change nothing', async () => {
    const inst = await approvedInstitution();
    const now = await syncClock();
    const p = await makePerson(db, testPii);
    const cls = await createClass(inst.key, { sessions: dailySessions(now + 2 * DAY, 3), roster: [p.idNumber, p.idNumber] });
    const view = await request(app).get(`/v1/classes/${cls.classId}`).set(bearer(inst.key));
    expect(view.body).toMatchObject({ mode: 'offline', trainingKind: 'certificate', venue: VENUE, rosterSize: 1 });
    expect(view.body.sessions).toHaveLength(3);
    const roster = await db('class_roster').where({ class_id: cls.classId });
    expect(roster.map((x: { person_ref: string }) => x.person_ref)).toEqual([p.personRef]);
    expect(JSON.stringify(roster)).not.toContain(p.idNumber);
    expect(await db('class_qr_secrets').where({ class_id: cls.classId }).first()).toBeTruthy();

    const before = Number((await db('classes').where({ institution_id: inst.id }).count<{ n: string }[]>({ n: '*' }))[0]!.n);
    const base = { occupationCode: '4-01-01', level: '4', trainingKind: 'certificate', capacity: 5, roster: [] };
    const noVenue = await request(app)
      .post('/v1/classes')
      .set(bearer(inst.key))
      .send({ ...base, mode: 'offline', sessions: [{ sessionId: 'S01', startsAt: iso(now + DAY), endsAt: iso(now + DAY + 90 * MIN), minutes: 90 }] });
    expect(noVenue.status).toBe(400);
    expect(noVenue.body.code).toBe('VENUE_REQUIRED');
    const started = await request(app)
      .post('/v1/classes')
      .set(bearer(inst.key))
      .send({ ...base, mode: 'online', sessions: [{ sessionId: 'S01', startsAt: iso(now - 60 * MIN), endsAt: iso(now + 30 * MIN), minutes: 90 }] });
    expect(started.status).toBe(422);
    expect(started.body).toMatchObject({ code: 'CLASS_ALREADY_STARTED', rule: 'R4.2' });
    const tooLong = await request(app)
      .post('/v1/classes')
      .set(bearer(inst.key))
      .send({ ...base, mode: 'online', sessions: [{ sessionId: 'S01', startsAt: iso(now + DAY), endsAt: iso(now + DAY + 30 * MIN), minutes: 90 }] });
    expect(tooLong.status).toBe(400);
    const badKind = await request(app)
      .post('/v1/classes')
      .set(bearer(inst.key))
      .send({ ...base, trainingKind: 'hobby', mode: 'online', sessions: [{ sessionId: 'S01', startsAt: iso(now + DAY), endsAt: iso(now + DAY + 90 * MIN), minutes: 90 }] });
    expect(badKind.status).toBe(400);
    expect(Number((await db('classes').where({ institution_id: inst.id }).count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(before);
    // Another institution's class looks missing.
    const other = await approvedInstitution();
    expect((await request(app).get(`/v1/classes/${cls.classId}`).set(bearer(other.key))).status).toBe(404);
  });

  test('R4.2: roster and plan changes after the start are recorded in class_changes; a started session cannot change', async () => {
    const inst = await approvedInstitution();
    const now = await syncClock();
    const sessions = dailySessions(now + DAY, 3);
    const cls = await createClass(inst.key, { sessions, roster: [] });
    clock = sessions[0]!.startsAt + 10 * MIN; // the class has started
    const p = await makePerson(db, testPii);
    const r = await request(app).put(`/v1/classes/${cls.classId}/roster`).set(bearer(inst.key)).send({ roster: [p.idNumber] });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ rosterSize: 1, afterStart: true });
    const moved = sessions.map((s, k) => (k === 2 ? { ...s, startsAt: s.startsAt + 60 * MIN, endsAt: s.endsAt + 60 * MIN } : s));
    const body = (list: SessionSpec[]) => ({ sessions: list.map((s) => ({ sessionId: s.sessionId, startsAt: iso(s.startsAt), endsAt: iso(s.endsAt), minutes: s.minutes })) });
    const ok = await request(app).put(`/v1/classes/${cls.classId}/sessions`).set(bearer(inst.key)).send(body(moved));
    expect(ok.status).toBe(200);
    const bad = await request(app).put(`/v1/classes/${cls.classId}/sessions`).set(bearer(inst.key)).send(body(moved.slice(1)));
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ code: 'SESSION_ALREADY_STARTED', rule: 'R4.2' });
    const changes = await db('class_changes').where({ class_id: cls.classId }).orderBy('id');
    expect(changes.map((c: { kind: string; after_start: boolean }) => [c.kind, c.after_start])).toEqual([
      ['roster', true],
      ['sessions', true],
    ]);
    expect(changes[0].after).toEqual([p.personRef]);
    expect(JSON.stringify(changes)).not.toContain(p.idNumber);
    const stored = await db('class_sessions').where({ class_id: cls.classId, session_id: 'S03' }).first();
    expect(stored.starts_at.getTime()).toBe(moved[2]!.startsAt);
    await syncClock();
  });
});

describe('course search (R3.6)', () => {
  test('R3.6: search lists approved institutions’ classes not yet started with seats left, filtered, with cursor pagination', async () => {
    const occ = uniqueOccupation();
    const inst = await approvedInstitution();
    const now = await syncClock();
    const ids: string[] = [];
    for (let k = 0; k < 5; k++) ids.push((await createClass(inst.key, { occupationCode: occ, sessions: dailySessions(now + (k + 2) * DAY, 2) })).classId);
    const online = await createClass(inst.key, { occupationCode: occ, mode: 'online', level: '3', sessions: dailySessions(now + 9 * DAY, 2) });
    // Excluded: full, already started, institution not approved.
    const full = await createClass(inst.key, { occupationCode: occ, capacity: 1, sessions: dailySessions(now + 3 * DAY, 2) });
    await trainee(occ, { classId: full.classId, instKey: inst.key });
    const startedInst = await makeInstitution(db);
    await makeClass(db, { institutionId: startedInst, firstStart: now - DAY, occupationCode: occ });
    const pending = await makeInstitution(db, 'pending');
    await makeClass(db, { institutionId: pending, firstStart: now + 4 * DAY, occupationCode: occ });
    const rect = await makeInstitution(db, 'rectification');
    await makeClass(db, { institutionId: rect, firstStart: now + 4 * DAY, occupationCode: occ });

    const holder = await keyFor(db, 'holder', { personRef: 'Psearcher' });
    const all = await request(app).get('/v1/classes').query({ occupationCode: occ }).set(bearer(holder));
    expect(all.status).toBe(200);
    expect(all.body.items.map((x: { classId: string }) => x.classId)).toEqual([...ids, online.classId]);
    expect(all.body.items[0]).toMatchObject({ seatsLeft: 30, district: '330602', sessionCount: 2, totalMinutes: 180, mode: 'offline' });
    expect(all.body.nextCursor).toBeNull();

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await request(app).get('/v1/classes').query({ occupationCode: occ, limit: 2, ...(cursor ? { cursor } : {}) }).set(bearer(holder));
      expect(r.status).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.items.map((x: { classId: string }) => x.classId));
      cursor = r.body.nextCursor ?? undefined;
      if (!cursor) break;
    }
    expect(seen).toEqual([...ids, online.classId]);

    const byMode = await request(app).get('/v1/classes').query({ occupationCode: occ, mode: 'online' }).set(bearer(holder));
    expect(byMode.body.items.map((x: { classId: string }) => x.classId)).toEqual([online.classId]);
    const byLevel = await request(app).get('/v1/classes').query({ occupationCode: occ, level: '3' }).set(bearer(holder));
    expect(byLevel.body.items).toHaveLength(1);
    const byWindow = await request(app)
      .get('/v1/classes')
      .query({ occupationCode: occ, startFrom: iso(now + 3 * DAY), startTo: iso(now + 4 * DAY) })
      .set(bearer(holder));
    expect(byWindow.body.items.map((x: { classId: string }) => x.classId)).toEqual([ids[1], ids[2]]);
    const otherDistrict = await request(app).get('/v1/classes').query({ occupationCode: occ, district: '330683' }).set(bearer(holder));
    expect(otherDistrict.body.items).toHaveLength(0);

    expect((await request(app).get('/v1/classes').query({ limit: 101 }).set(bearer(holder))).status).toBe(400);
    expect((await request(app).get('/v1/classes').query({ cursor: 'garbage' }).set(bearer(holder))).body.code).toBe('INVALID_CURSOR');
    expect((await request(app).get('/v1/classes').query({ colour: 'red' }).set(bearer(holder))).status).toBe(400);
    expect((await request(app).get('/v1/classes')).status).toBe(401);
  });
});

describe('check-ins (R3.10)', () => {
  test('R3.10: a holder checks in at the venue with the current QR code; every refusal has its reason code, is stored, and counts nothing', async () => {
    const occ = uniqueOccupation();
    const inst = await approvedInstitution();
    const now = await syncClock();
    const sessions = dailySessions(now + 2 * DAY, 4);
    const cls = await createClass(inst.key, { occupationCode: occ, sessions });
    const otherCls = await createClass(inst.key, { occupationCode: occ, sessions });
    const a = await trainee(occ, { classId: cls.classId, instKey: inst.key });
    const notEnrolled = await trainee(occ);
    const stranger = await trainee(occ, { classId: cls.classId, instKey: inst.key });
    const [s1, s2] = sessions;

    // S01, at the venue, during the session, with the current code: counted.
    clock = s1!.startsAt + 5 * MIN;
    const t1 = await qr(inst.key, cls.classId, 'S01');
    const ok = await checkIn(a, 'S01', t1, { lat: 30.0005, lng: 120.5801 });
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({ counted: true, verifiedMinutes: 90 });
    expect(ok.body.distanceMeters).toBeLessThan(POLICY.checkInRadiusMeters);
    const st = await eventually(() => state(a.voucherNo), (s) => s.attendedMinutes === 90);
    expect(st.sessions.find((x) => x.sessionId === 'S01')!.verifiedMinutes).toBe(90);

    const refusals: Array<[string, Awaited<ReturnType<typeof checkIn>>, number, string]> = [];
    // The same code again (replay), and a fresh code for the same session (twice for one session).
    refusals.push(['replay', await checkIn(a, 'S01', t1), 409, 'QR_TOKEN_REPLAYED']);
    clock += POLICY.qrTokenWindowSeconds * 1000;
    const t1b = await qr(inst.key, cls.classId, 'S01');
    expect(t1b).not.toBe(t1);
    refusals.push(['twice', await checkIn(a, 'S01', t1b), 409, 'SESSION_ALREADY_CHECKED_IN']);
    // The old code has rotated away: expired.
    refusals.push(['old code used for another session', await checkIn(a, 'S02', t1), 422, 'QR_TOKEN_OTHER_SESSION']);

    // S02: 5 km away; outside the session window; expired; other session; other class; forged; not on a class.
    clock = s2!.startsAt + 5 * MIN;
    const t2 = await qr(inst.key, cls.classId, 'S02');
    refusals.push(['5 km away', await checkIn(a, 'S02', t2, { lat: 30.045, lng: 120.58 }), 422, 'CHECK_IN_TOO_FAR']);
    clock = s2!.endsAt + 10 * MIN;
    const late = await qr(inst.key, cls.classId, 'S02');
    refusals.push(['after the session', await checkIn(a, 'S02', late), 422, 'CHECK_IN_OUTSIDE_SESSION']);
    clock = s2!.startsAt - 30 * MIN;
    const early = await qr(inst.key, cls.classId, 'S02');
    refusals.push(['before the session', await checkIn(a, 'S02', early), 422, 'CHECK_IN_OUTSIDE_SESSION']);
    clock = s2!.startsAt + 5 * MIN;
    const t2now = await qr(inst.key, cls.classId, 'S02');
    clock += POLICY.qrTokenWindowSeconds * 1000;
    refusals.push(['expired code', await checkIn(a, 'S02', t2now), 422, 'QR_TOKEN_EXPIRED']);
    const t3 = await qr(inst.key, cls.classId, 'S03');
    refusals.push(['code of another session', await checkIn(a, 'S02', t3), 422, 'QR_TOKEN_OTHER_SESSION']);
    const tOther = await qr(inst.key, otherCls.classId, 'S02');
    refusals.push(['code of another class', await checkIn(a, 'S02', tOther), 422, 'QR_TOKEN_OTHER_CLASS']);
    const cur = await qr(inst.key, cls.classId, 'S02');
    const forged = cur.slice(0, -2) + (cur.endsWith('AA') ? 'BB' : 'AA');
    refusals.push(['forged code', await checkIn(a, 'S02', forged), 422, 'QR_TOKEN_INVALID']);
    refusals.push(['voucher not on the class', await checkIn(notEnrolled, 'S02', cur), 409, 'VOUCHER_NOT_ON_CLASS']);
    refusals.push([
      'someone else’s voucher',
      await request(app).post('/v1/check-ins').set(bearer(stranger.holder)).send({ voucherNo: a.voucherNo, sessionId: 'S02', token: cur, lat: VENUE.lat, lng: VENUE.lng }),
      404,
      'VOUCHER_NOT_FOUND',
    ]);
    refusals.push(['session not in plan', await checkIn(a, 'S99', cur), 422, 'SESSION_NOT_IN_PLAN']);

    for (const [what, res, status, code] of refusals) {
      expect({ what, status: res.status, code: res.body.code }).toEqual({ what, status, code });
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    // Role: an institution cannot check in for a holder.
    expect((await request(app).post('/v1/check-ins').set(bearer(inst.key)).send({ voucherNo: a.voucherNo, sessionId: 'S02', token: cur, lat: 30, lng: 120.58 })).status).toBe(403);

    // Nothing refused was counted.
    const after = await state(a.voucherNo);
    expect(after.attendedMinutes).toBe(90);
    expect((await db('check_ins').where({ voucher_no: a.voucherNo })).map((x: { session_id: string }) => x.session_id)).toEqual(['S01']);
    // Every attempt is on record with verdict, reason, distance, time; coordinates only encrypted.
    const attempts = await db('check_in_attempts').where({ voucher_no: a.voucherNo }).orderBy('id');
    const ownRefusals = refusals.filter(([w]) => w !== 'someone else’s voucher' && w !== 'voucher not on the class');
    expect(attempts).toHaveLength(1 + ownRefusals.length + 1);
    expect(attempts[0]).toMatchObject({ verdict: 'accepted', reason_code: null, session_id: 'S01', minutes: 90 });
    expect(attempts.filter((x: { verdict: string }) => x.verdict === 'refused').map((x: { reason_code: string }) => x.reason_code).sort()).toEqual(
      [...ownRefusals.map(([, , , c]) => c), 'VOUCHER_NOT_FOUND'].sort(),
    );
    const far = attempts.find((x: { reason_code: string }) => x.reason_code === 'CHECK_IN_TOO_FAR');
    expect(far.distance_m).toBeGreaterThan(4_900);
    expect(far.distance_m).toBeLessThan(5_100);
    expect(far.attempted_at).toBeInstanceOf(Date);
    expect(far.coords_enc).not.toContain('30.045');
    expect(JSON.parse(testPii.decrypt(far.coords_enc))).toEqual({ lat: 30.045, lng: 120.58 });
    expect(await db('check_in_attempts').where({ voucher_no: notEnrolled.voucherNo, reason_code: 'VOUCHER_NOT_ON_CLASS' })).toHaveLength(1);

    // The QR code is only for the class's own institution.
    const other = await approvedInstitution();
    expect((await request(app).get(`/v1/classes/${cls.classId}/sessions/S02/qr`).set(bearer(other.key))).status).toBe(404);
    expect((await request(app).get(`/v1/classes/${cls.classId}/sessions/S02/qr`).set(bearer(a.holder))).status).toBe(403);
    await syncClock();
  });

  test('R3.10: online sessions count the learning time the course platform reports, capped at the session’s minutes, once', async () => {
    const occ = uniqueOccupation();
    const inst = await approvedInstitution();
    const now = await syncClock();
    const sessions = dailySessions(now + 2 * DAY, 3, 60);
    const cls = await createClass(inst.key, { occupationCode: occ, mode: 'online', sessions });
    const offline = await createClass(inst.key, { occupationCode: occ, sessions });
    const a = await trainee(occ, { classId: cls.classId, instKey: inst.key });
    const b = await trainee(occ, { classId: offline.classId, instKey: inst.key });
    const report = (classId: string, sessionId: string, voucherNo: string, minutes: number, key = inst.key) =>
      request(app).post(`/v1/classes/${classId}/sessions/${sessionId}/learning-time`).set(bearer(key)).send({ voucherNo, minutes });

    clock = sessions[0]!.startsAt - MIN;
    const notYet = await report(cls.classId, 'S01', a.voucherNo, 30);
    expect(notYet.status).toBe(422);
    expect(notYet.body.code).toBe('SESSION_NOT_STARTED');
    clock = sessions[0]!.endsAt + 60 * MIN;
    const r = await report(cls.classId, 'S01', a.voucherNo, 200);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ verifiedMinutes: 60, capped: true });
    const again = await report(cls.classId, 'S01', a.voucherNo, 10);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('SESSION_ALREADY_REPORTED');
    clock = sessions[1]!.endsAt;
    expect((await report(cls.classId, 'S02', a.voucherNo, 45)).body).toMatchObject({ verifiedMinutes: 45, capped: false });
    const st = await eventually(() => state(a.voucherNo), (s) => s.attendedMinutes === 105);
    expect(st.attendedMinutes).toBe(105);
    expect(st.totalMinutes).toBe(180);

    const wrongMode = await report(offline.classId, 'S01', b.voucherNo, 30);
    expect(wrongMode.status).toBe(422);
    expect(wrongMode.body.code).toBe('CLASS_NOT_ONLINE');
    const notOnClass = await report(cls.classId, 'S02', b.voucherNo, 30);
    expect(notOnClass.status).toBe(422);
    expect(notOnClass.body.code).toBe('VOUCHER_NOT_ON_CLASS');
    const other = await approvedInstitution();
    expect((await report(cls.classId, 'S03', a.voucherNo, 30, other.key)).status).toBe(404);
    // A holder cannot check in to an online class with a QR code.
    const qrOnline = await request(app).get(`/v1/classes/${cls.classId}/sessions/S03/qr`).set(bearer(inst.key));
    expect(qrOnline.status).toBe(422);
    expect((await state(b.voucherNo)).attendedMinutes).toBe(0);
    await syncClock();
  });
});

describe('class completion (R4.2)', () => {
  test('R4.2 R3.10: after the last session the institution pushes results once; every enrolled voucher is completed and settles; a second submission is 409', async () => {
    const occ = uniqueOccupation();
    const inst = await approvedInstitution();
    const now = await syncClock();
    const sessions = dailySessions(now + 2 * DAY, 2, 60);
    const cls = await createClass(inst.key, { occupationCode: occ, sessions });
    await makeCatalogueEntry(db, { occupationCode: occ, level: '4', amountFen: 50_000 });
    const a = await trainee(occ, { classId: cls.classId, instKey: inst.key });
    const b = await trainee(occ, { classId: cls.classId, instKey: inst.key });
    for (const s of sessions) {
      clock = s.startsAt + MIN;
      const token = await qr(inst.key, cls.classId, s.sessionId);
      expect((await checkIn(a, s.sessionId, token)).status).toBe(202);
    }
    await eventually(() => state(a.voucherNo), (s) => s.attendedMinutes === 120);
    const submit = (results: unknown[]) => request(app).post(`/v1/classes/${cls.classId}/completion`).set(bearer(inst.key)).send({ results });
    const results = [
      { voucherNo: a.voucherNo, assessmentPassed: true },
      { voucherNo: b.voucherNo, assessmentPassed: true },
    ];

    const tooEarly = await submit(results);
    expect(tooEarly.status).toBe(409);
    expect(tooEarly.body).toMatchObject({ code: 'CLASS_NOT_FINISHED', rule: 'R4.2' });
    clock = sessions[1]!.endsAt + MIN;
    const incomplete = await submit(results.slice(0, 1));
    expect(incomplete.status).toBe(422);
    expect(incomplete.body.code).toBe('RESULTS_INCOMPLETE');
    const outsider = await trainee(occ);
    const strangers = await submit([...results, { voucherNo: outsider.voucherNo, assessmentPassed: true }]);
    expect(strangers.status).toBe(422);
    expect(strangers.body.code).toBe('VOUCHER_NOT_ON_CLASS');
    expect(await db('class_completions').where({ class_id: cls.classId })).toHaveLength(0);
    const other = await approvedInstitution();
    expect((await request(app).post(`/v1/classes/${cls.classId}/completion`).set(bearer(other.key)).send({ results })).status).toBe(404);
    expect((await request(app).get(`/v1/classes/${cls.classId}/completion`).set(bearer(inst.key))).status).toBe(404);

    const ok = await submit(results);
    expect(ok.status).toBe(202);
    const second = await submit(results);
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('COMPLETION_ALREADY_SUBMITTED');

    const closed = (s: { status: string }) => s.status === 'settled' || s.status === 'rejected';
    const ra = await eventually(() => state(a.voucherNo), closed, 30_000);
    const rb = await eventually(() => state(b.voucherNo), closed, 30_000);
    expect(ra.status).toBe('settled');
    expect(rb.status).toBe('rejected'); // no check-ins at all
    expect(rb.settlement).toMatchObject({ reason: 'CHECK_IN_RATE_BELOW_THRESHOLD', rule: 'R3.10' });
    const view = await eventually(
      () => request(app).get(`/v1/classes/${cls.classId}/completion`).set(bearer(inst.key)),
      (r) => r.body.done === true,
    );
    expect(view.status).toBe(200);
    expect(view.body.trainees).toEqual([
      { voucherNo: a.voucherNo, assessmentPassed: true, outcome: 'signalled' },
      { voucherNo: b.voucherNo, assessmentPassed: true, outcome: 'signalled' },
    ]);
    expect(await db('disbursements').where({ voucher_no: a.voucherNo })).toHaveLength(1);
    expect(await db('disbursements').where({ voucher_no: b.voucherNo })).toHaveLength(0);
    await syncClock();
  });
});
