/**
 * HR's spot checks (R4.3) through the HTTP API over PostgreSQL and a real worker (time-skipping server):
 * a reproducible random draw of the sessions a district supervises, live quality indicators from the
 * attendance records, and findings — a quality problem is a strike the institution workflow counts (R4.4).
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import type { Express } from 'express';
import type { Db } from '../db/connection';
import { localIso, parseLocal } from '../policy/calendar';
import { bearer, keyFor, testApp } from './helpers/api';
import { eventually, timeSkippingWorld, type World } from './helpers/world';
import { makeClass, makeInstitution, uid } from './helpers/fixtures';

const ZONE = 'Asia/Shanghai';
const DAY = 86_400_000;
const MIN = 60_000;
/** A period of its own, years ahead, so sessions other test files create never fall in it. */
const PERIOD_START = parseLocal('2033-05-02T00:00', ZONE);
const iso = (ms: number) => localIso(ms, ZONE);

let world: World;
let db: Db;
let app: Express;
let clock = 0;
let hr: string;
let hrOther: string;
let operator: string;

beforeAll(async () => {
  world = await timeSkippingWorld('spot-checks');
  db = world.db;
  app = testApp(db, world.env.client, world.taskQueue, () => clock);
  hr = await keyFor(db, 'hr', { district: '330624' });
  hrOther = await keyFor(db, 'hr', { district: '330602' });
  operator = await keyFor(db, 'operator');
});

afterAll(async () => {
  await world?.stop();
});

/** A class of `sessions` daily sessions from `firstStart`, switched to online when asked. */
async function classOf(institutionId: string, firstStart: number, sessions: number, mode: 'online' | 'offline' = 'offline') {
  const cls = await makeClass(db, { institutionId, firstStart, sessions, minutes: 90 });
  if (mode === 'online') await db('classes').where({ id: cls.classId }).update({ mode: 'online', venue_lat: null, venue_lng: null });
  return cls;
}

const rank = (seed: string, classId: string, sessionId: string) => createHash('sha256').update(`${seed}:${classId}:${sessionId}`).digest('hex');

describe('spot checks (R4.3)', () => {
  test('R4.3: HR draws a reproducible random sample of the sessions its own district supervises, in the period and filters asked; nothing is drawn from elsewhere', async () => {
    const inst = await makeInstitution(db, 'approved', '330624');
    const elsewhere = await makeInstitution(db, 'approved', '330602');
    const offline = await classOf(inst, PERIOD_START + 9 * 3_600_000, 6);
    const online = await classOf(inst, PERIOD_START + 10 * 3_600_000, 4, 'online');
    await classOf(elsewhere, PERIOD_START + 9 * 3_600_000, 6);
    // A session after the period: not eligible.
    await classOf(inst, PERIOD_START + 30 * DAY, 1);
    const period = { from: iso(PERIOD_START), to: iso(PERIOD_START + 14 * DAY) };
    clock = PERIOD_START - DAY;

    const drawn = await request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 5, note: 'May offline and online sample' });
    expect(drawn.status).toBe(201);
    expect(drawn.headers.location).toBe(`/v1/spot-checks/${drawn.body.id}`);
    const eligible = [...offline.sessionIds.map((s) => [offline.classId, s]), ...online.sessionIds.map((s) => [online.classId, s])] as [string, string][];
    expect(drawn.body).toMatchObject({ district: '330624', sampleSize: 5, mode: null, institutionId: null, note: 'May offline and online sample', draw: { candidates: eligible.length }, findings: { drawn: 5, recorded: 0, qualityProblems: 0 } });
    // The draw is the first five of the eligible sessions ordered by SHA-256 of seed:class:session.
    const seed = drawn.body.draw.seed as string;
    const expected = [...eligible].sort((a, b) => (rank(seed, ...a) < rank(seed, ...b) ? -1 : 1)).slice(0, 5);
    expect(drawn.body.items.map((i: { classId: string; sessionId: string }) => [i.classId, i.sessionId])).toEqual(expected);
    expect(drawn.body.items.map((i: { itemNo: number }) => i.itemNo)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(drawn.body.items.map((i: { institutionId: string }) => i.institutionId))).toEqual(new Set([inst]));
    expect(drawn.body.items.every((i: { phase: string; finding: unknown }) => i.phase === 'scheduled' && i.finding === null)).toBe(true);

    // A sample larger than what is eligible takes all of it; a mode narrows it.
    const all = await request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 200 });
    expect({ status: all.status, drawn: all.body.items?.length, candidates: all.body.draw?.candidates }).toEqual({ status: 201, drawn: 10, candidates: 10 });
    const onlineOnly = await request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 200, mode: 'online' });
    expect(onlineOnly.body.items.map((i: { classId: string; mode: string }) => [i.classId, i.mode])).toEqual(online.sessionIds.map(() => [online.classId, 'online']));
    const oneInstitution = await request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 3, institutionId: inst });
    expect(oneInstitution.status).toBe(201);

    // Refusals change nothing.
    const before = Number((await db('spot_checks').count<{ n: string }[]>({ n: '*' }))[0]!.n);
    const refusals = await Promise.all([
      request(app).post('/v1/spot-checks').set(bearer(hr)).send({ from: iso(PERIOD_START + 200 * DAY), to: iso(PERIOD_START + 201 * DAY), sampleSize: 3 }),
      request(app).post('/v1/spot-checks').set(bearer(hr)).send({ from: period.to, to: period.from, sampleSize: 3 }),
      request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 0 }),
      request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 3, institutionId: elsewhere }),
      request(app).post('/v1/spot-checks').set(bearer(hr)).send({ ...period, sampleSize: 3, pickedByHand: ['S01'] }),
      request(app).post('/v1/spot-checks').set(bearer(operator)).send({ ...period, sampleSize: 3 }),
    ]);
    expect(refusals.map((r) => [r.status, r.body.code])).toEqual([
      [422, 'NO_SESSIONS_IN_SCOPE'],
      [400, 'INVALID_REQUEST'],
      [400, 'INVALID_REQUEST'],
      [404, 'INSTITUTION_NOT_FOUND'],
      [400, 'INVALID_REQUEST'],
      [403, 'FORBIDDEN_ROLE'],
    ]);
    expect(refusals[0]!.body.rule).toBe('R4.3');
    expect(Number((await db('spot_checks').count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(before);

    // Who sees it: HR of the district and operators; another district's HR as if it did not exist.
    expect((await request(app).get(`/v1/spot-checks/${drawn.body.id}`).set(bearer(operator))).body.items).toHaveLength(5);
    const hidden = await request(app).get(`/v1/spot-checks/${drawn.body.id}`).set(bearer(hrOther));
    expect([hidden.status, hidden.body.code]).toEqual([404, 'SPOT_CHECK_NOT_FOUND']);
    const own = await request(app).get('/v1/spot-checks?limit=100').set(bearer(hr));
    expect(own.body.items.map((x: { id: string }) => x.id)).toEqual(expect.arrayContaining([drawn.body.id, all.body.id, onlineOnly.body.id, oneInstitution.body.id]));
    expect(own.body.items.every((x: { district: string }) => x.district === '330624')).toBe(true);
    const others = await request(app).get('/v1/spot-checks?limit=100').set(bearer(hrOther));
    expect(others.body.items.map((x: { id: string }) => x.id)).not.toContain(drawn.body.id);
    // Newest first, page by page.
    const first = await request(app).get('/v1/spot-checks?limit=2').set(bearer(hr));
    const second = await request(app).get(`/v1/spot-checks?limit=2&cursor=${first.body.nextCursor}`).set(bearer(hr));
    expect(first.body.items.map((x: { id: string }) => x.id)).toEqual([oneInstitution.body.id, onlineOnly.body.id]);
    expect(second.body.items.map((x: { id: string }) => x.id)).toEqual([all.body.id, drawn.body.id]);
  });

  test('R4.3 R4.4: each drawn session shows its attendance indicators; a finding is recorded once, after the session started; quality problems are strikes the institution workflow counts, and the third puts it under rectification', async () => {
    const inst = await makeInstitution(db, 'approved', '330624');
    const firstStart = PERIOD_START + 40 * DAY;
    const cls = await classOf(inst, firstStart, 4);
    // Four trainees enrolled; for session S01 two checked in themselves, the institution reported three
    // (one of them with no check-in of their own), and three attempts were refused.
    const vouchers = Array.from({ length: 4 }, () => uid('SXV'));
    await db('enrolments').insert(vouchers.map((v) => ({ voucher_no: v, class_id: cls.classId, institution_id: inst, person_ref: uid('P'), review_passed: true, enrolled_at: new Date(firstStart - DAY) })));
    const at = new Date(firstStart + 10 * MIN);
    await db('check_ins').insert(vouchers.slice(0, 2).map((v) => ({ voucher_no: v, session_id: 'S01', class_id: cls.classId, method: 'qr_geo', minutes: 90, accepted_at: at })));
    await db('attendance_reports').insert(vouchers.slice(0, 3).map((v) => ({ voucher_no: v, session_id: 'S01', institution_id: inst, verified_minutes: 90, principal_id: 'inst-x', reported_at: at })));
    await db('check_in_attempts').insert([
      { voucher_no: vouchers[3], class_id: cls.classId, session_id: 'S01', principal_id: 'holder-x', method: 'qr_geo', verdict: 'refused', reason_code: 'QR_EXPIRED', attempted_at: at },
      { voucher_no: vouchers[3], class_id: cls.classId, session_id: 'S01', principal_id: 'holder-x', method: 'qr_geo', verdict: 'refused', reason_code: 'QR_EXPIRED', attempted_at: at },
      { voucher_no: vouchers[2], class_id: cls.classId, session_id: 'S01', principal_id: 'holder-x', method: 'qr_geo', verdict: 'refused', reason_code: 'OUT_OF_RANGE', attempted_at: at },
    ]);

    clock = firstStart - DAY;
    const sc = await request(app).post('/v1/spot-checks').set(bearer(hr)).send({ from: iso(firstStart - DAY), to: iso(firstStart + 10 * DAY), sampleSize: 10, institutionId: inst });
    expect(sc.status).toBe(201);
    expect(sc.body.items).toHaveLength(4);
    const itemOf = (sessionId: string) => sc.body.items.find((i: { sessionId: string }) => i.sessionId === sessionId).itemNo as number;
    const s01 = sc.body.items.find((i: { sessionId: string }) => i.sessionId === 'S01');
    expect(s01.indicators).toEqual({
      enrolled: 4,
      attended: 3,
      attendancePct: 75,
      traineeCheckIns: 2,
      onlineReports: 0,
      onlineMinutes: 0,
      institutionReports: 3,
      reportsWithoutTraineeCheckIn: 1,
      refusedAttempts: { total: 3, byReason: { QR_EXPIRED: 2, OUT_OF_RANGE: 1 } },
    });
    expect(sc.body.items.find((i: { sessionId: string }) => i.sessionId === 'S02').indicators).toMatchObject({ enrolled: 4, attended: 0, attendancePct: 0, institutionReports: 0 });

    const finding = (itemNo: number, result: string, note: string, api: Express = app, key = hr) =>
      request(api).put(`/v1/spot-checks/${sc.body.id}/items/${itemNo}/finding`).set(bearer(key)).send({ result, note });
    const strikes = () => db('institution_strikes').where({ institution_id: inst }).orderBy('id');

    // The institution takes S04 out of its plan after the draw (allowed before it starts, R4.2): the item stays, withdrawn.
    const instKey = await keyFor(db, 'institution', { institutionId: inst });
    const kept = (await db('class_sessions').where({ class_id: cls.classId }).whereNot({ session_id: 'S04' }).orderBy('session_id')).map(
      (x: { session_id: string; starts_at: Date; ends_at: Date; minutes: number }) => ({ sessionId: x.session_id, startsAt: iso(x.starts_at.getTime()), endsAt: iso(x.ends_at.getTime()), minutes: x.minutes }),
    );
    expect((await request(app).put(`/v1/classes/${cls.classId}/sessions`).set(bearer(instKey)).send({ sessions: kept })).status).toBe(200);
    const withdrawn = (await request(app).get(`/v1/spot-checks/${sc.body.id}`).set(bearer(hr))).body.items.find((i: { sessionId: string }) => i.sessionId === 'S04');
    expect(withdrawn).toMatchObject({ phase: 'withdrawn', startsAt: null, endsAt: null, minutes: null, mode: 'offline' });

    // Before the session has started there is nothing to have inspected.
    const early = await finding(itemOf('S01'), 'quality_problem', 'attendance sheet signed for absent trainees');
    expect([early.status, early.body.code, early.body.rule]).toEqual([409, 'SESSION_NOT_STARTED', 'R4.3']);

    clock = firstStart + 5 * DAY;
    // Satisfactory: recorded once, no strike; the same finding again answers the same; another is refused.
    const ok = await finding(itemOf('S02'), 'satisfactory', 'visited on site: 4 of 4 present');
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ spotCheckId: sc.body.id, item: { sessionId: 'S02', phase: 'ended', finding: { result: 'satisfactory', note: 'visited on site: 4 of 4 present', strikeId: null } } });
    expect((await finding(itemOf('S02'), 'satisfactory', 'visited on site: 4 of 4 present')).status).toBe(200);
    const changed = await finding(itemOf('S02'), 'quality_problem', 'on second thoughts');
    expect([changed.status, changed.body.code]).toEqual([409, 'FINDING_ALREADY_RECORDED']);
    expect(await strikes()).toHaveLength(0);

    // Refusals: another district's HR, an institution, a bad body, an unknown item — nothing changes.
    const refused = await Promise.all([
      finding(itemOf('S01'), 'quality_problem', 'x', app, hrOther),
      finding(itemOf('S01'), 'quality_problem', 'x', app, await keyFor(db, 'institution', { institutionId: inst })),
      finding(itemOf('S01'), 'bad', 'x'),
      finding(99, 'satisfactory', 'x'),
    ]);
    expect(refused.map((r) => [r.status, r.body.code])).toEqual([
      [404, 'SPOT_CHECK_NOT_FOUND'],
      [403, 'FORBIDDEN_ROLE'],
      [400, 'INVALID_REQUEST'],
      [404, 'SPOT_CHECK_ITEM_NOT_FOUND'],
    ]);

    // A quality problem with Temporal unreachable: neither the finding nor its strike is recorded (503).
    const down = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', interceptors: [] }) });
    try {
      const unavailable = await finding(itemOf('S01'), 'quality_problem', 'attendance sheet signed for absent trainees', testApp(db, down, world.taskQueue, () => clock));
      expect([unavailable.status, unavailable.body.code]).toEqual([503, 'TEMPORAL_UNAVAILABLE']);
    } finally {
      await down.connection.close();
    }
    expect((await db('spot_check_items').where({ spot_check_id: sc.body.id, item_no: itemOf('S01') }).first()).result).toBeNull();
    expect(await strikes()).toHaveLength(0);

    // R4.4: the quality problem is a strike, with the indicators of the moment kept as evidence.
    const problem = await finding(itemOf('S01'), 'quality_problem', 'attendance sheet signed for absent trainees');
    expect(problem.status).toBe(201);
    const strikeId = `spotcheck-${sc.body.id}-${itemOf('S01')}`;
    expect(problem.body.item.finding).toMatchObject({ result: 'quality_problem', strikeId, indicators: { reportsWithoutTraineeCheckIn: 1 } });
    expect((await strikes()).map((s: { id: string; kind: string; district: string }) => [s.id, s.kind, s.district])).toEqual([[strikeId, 'quality', '330624']]);
    const register = () => request(app).get(`/v1/institutions/${inst}/strikes`).set(bearer(hr));
    expect((await eventually(register, (r) => r.body.counts?.quality === 1)).body.counts).toEqual({ lax_review: 0, quality: 1 });
    // A retry of the same finding delivers the same strike again: still counted once.
    expect((await finding(itemOf('S01'), 'quality_problem', 'attendance sheet signed for absent trainees')).status).toBe(200);
    expect(await strikes()).toHaveLength(1);

    // Two more quality problems → the policy's three in the window: rectification.
    expect((await finding(itemOf('S03'), 'quality_problem', 'teacher absent, video played')).status).toBe(201);
    expect((await finding(itemOf('S04'), 'quality_problem', 'session withdrawn after the draw, trainees not told')).status).toBe(201);
    const rect = await eventually(register, (r) => r.body.status === 'rectification');
    expect(rect.body.counts).toEqual({ lax_review: 0, quality: 3 });
    expect((await db('institutions').where({ id: inst }).first()).status).toBe('rectification');
    const view = await request(app).get(`/v1/spot-checks/${sc.body.id}`).set(bearer(hr));
    expect(view.body.findings).toEqual({ drawn: 4, recorded: 4, qualityProblems: 3 });
  });
});
