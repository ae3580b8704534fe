/**
 * R4.3: HR's spot checks and quality monitoring of training (authenticated; mounted under /v1).
 *
 * A district HR bureau draws a random sample of the class sessions it supervises — those of
 * institutions in its own district (R3.9: the institution's district supervises the training) — in a
 * period, optionally one mode or one institution. The draw is reproducible: the eligible sessions are
 * ordered by SHA-256 of `<seed>:<classId>:<sessionId>` with a seed the server picks after the period
 * is fixed, and the first `sampleSize` are taken; the seed and the number of eligible sessions are kept
 * and shown, so anyone can check that nothing was picked by hand.
 *
 * Each drawn session shows live quality indicators from the attendance records (enrolled trainees,
 * trainee-verified check-ins, online learning time, the institution's own attendance reports and how
 * many of those no trainee check-in backs, refused attempts by reason). The inspector records one
 * finding per session; a quality problem is a strike against the institution (R4.4), recorded with
 * the finding in one transaction (api/strikes.ts). Recording the same finding again is answered as
 * before (and re-delivers its strike); a different one is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import { localIso, parseLocal } from '../../policy/calendar';
import { VOUCHER_TASK_QUEUE } from '../../workflows/voucher/contract';
import { hrDistrict, requireRole } from '../auth';
import { asyncRoute, keysetPage, PAGE_PARAMS, parse, type ApiDeps } from '../http';
import { Problem } from '../problem';
import { recordStrike } from '../strikes';
import { Id, LocalDateTime } from './training';

const ZONE = 'Asia/Shanghai';
/** The most sessions one spot check draws (an API limit, not a policy number). */
const MAX_SAMPLE = 200;

const SpotCheckBody = z
  .object({
    from: LocalDateTime,
    to: LocalDateTime,
    sampleSize: z.number().int().min(1).max(MAX_SAMPLE),
    mode: z.enum(['online', 'offline']).optional(),
    institutionId: Id.optional(),
    note: z.string().min(1).max(2000).optional(),
  })
  .strict();
const FindingBody = z.object({ result: z.enum(['satisfactory', 'quality_problem']), note: z.string().min(1).max(2000) }).strict();
const ListQuery = z.object(PAGE_PARAMS).strict();

type FindingResult = z.infer<typeof FindingBody>['result'];

interface ItemRow {
  spot_check_id: string;
  item_no: number;
  class_id: string;
  session_id: string;
  institution_id: string;
  result: FindingResult | null;
  finding_note: string | null;
  indicators_at_finding: Indicators | null;
  finding_by: string | null;
  finding_at: Date | null;
  strike_id: string | null;
}

interface SessionInfo {
  startsAt: number;
  endsAt: number;
  minutes: number;
}

export interface Indicators {
  enrolled: number;
  /** Trainees with any counted attendance for the session (their own check-in or the institution's report). */
  attended: number;
  /** attended ÷ enrolled in percent, one decimal; null with nobody enrolled. */
  attendancePct: number | null;
  /** Offline: QR + geolocated check-ins the trainees made themselves. */
  traineeCheckIns: number;
  /** Online: learning time the course platform reported, sessions and minutes. */
  onlineReports: number;
  onlineMinutes: number;
  /** Attendance the institution reported for its trainees. */
  institutionReports: number;
  /** Of those, how many no check-in of the trainee's own backs (for an offline session: the figure to look at). */
  reportsWithoutTraineeCheckIn: number;
  refusedAttempts: { total: number; byReason: Record<string, number> };
}

const pairKey = (classId: string, sessionId: string) => `${classId}\u0000${sessionId}`;
const drawRank = (seed: string, classId: string, sessionId: string) => createHash('sha256').update(`${seed}:${classId}:${sessionId}`).digest('hex');

/** Live indicators of each (class, session), in a fixed number of queries however many there are. */
async function indicatorsFor(db: Knex, pairs: { classId: string; sessionId: string }[]): Promise<Map<string, Indicators>> {
  const out = new Map<string, Indicators>();
  if (pairs.length === 0) return out;
  const values = pairs.map(() => '(?::text, ?::text)').join(', ');
  const binds = pairs.flatMap((p) => [p.classId, p.sessionId]);
  const sample = `sample(class_id, session_id) AS (VALUES ${values})`;
  // One after another: `db` may be a transaction, whose one connection takes a query at a time.
  const [enrolled, checkIns, reports, refused] = [
    await db.raw<{ rows: { class_id: string; n: string }[] }>(
      `WITH ${sample} SELECT e.class_id, count(*) AS n FROM enrolments e WHERE e.class_id IN (SELECT class_id FROM sample) GROUP BY e.class_id`,
      binds,
    ),
    await db.raw<{ rows: { class_id: string; session_id: string; method: string; n: string; minutes: string }[] }>(
      `WITH ${sample} SELECT c.class_id, c.session_id, c.method, count(*) AS n, coalesce(sum(c.minutes), 0) AS minutes
         FROM check_ins c JOIN sample s ON s.class_id = c.class_id AND s.session_id = c.session_id
        GROUP BY c.class_id, c.session_id, c.method`,
      binds,
    ),
    await db.raw<{ rows: { class_id: string; session_id: string; n: string; unbacked: string; attended: string }[] }>(
      `WITH ${sample},
            reported AS (
              SELECT e.class_id, a.session_id, a.voucher_no
                FROM attendance_reports a JOIN enrolments e ON e.voucher_no = a.voucher_no
                JOIN sample s ON s.class_id = e.class_id AND s.session_id = a.session_id),
            checked AS (
              SELECT c.class_id, c.session_id, c.voucher_no
                FROM check_ins c JOIN sample s ON s.class_id = c.class_id AND s.session_id = c.session_id)
       SELECT s.class_id, s.session_id,
              (SELECT count(*) FROM reported r WHERE r.class_id = s.class_id AND r.session_id = s.session_id) AS n,
              (SELECT count(*) FROM reported r WHERE r.class_id = s.class_id AND r.session_id = s.session_id
                  AND NOT EXISTS (SELECT 1 FROM checked c WHERE c.class_id = r.class_id AND c.session_id = r.session_id AND c.voucher_no = r.voucher_no)) AS unbacked,
              (SELECT count(*) FROM (SELECT voucher_no FROM reported r WHERE r.class_id = s.class_id AND r.session_id = s.session_id
                                     UNION SELECT voucher_no FROM checked c WHERE c.class_id = s.class_id AND c.session_id = s.session_id) u) AS attended
         FROM sample s`,
      binds,
    ),
    await db.raw<{ rows: { class_id: string; session_id: string; reason_code: string | null; n: string }[] }>(
      `WITH ${sample} SELECT a.class_id, a.session_id, a.reason_code, count(*) AS n
         FROM check_in_attempts a JOIN sample s ON s.class_id = a.class_id AND s.session_id = a.session_id
        WHERE a.verdict = 'refused'
        GROUP BY a.class_id, a.session_id, a.reason_code`,
      binds,
    ),
  ];
  const enrolledOf = new Map(enrolled.rows.map((r) => [r.class_id, Number(r.n)]));
  for (const p of pairs) {
    const n = enrolledOf.get(p.classId) ?? 0;
    out.set(pairKey(p.classId, p.sessionId), {
      enrolled: n,
      attended: 0,
      attendancePct: null,
      traineeCheckIns: 0,
      onlineReports: 0,
      onlineMinutes: 0,
      institutionReports: 0,
      reportsWithoutTraineeCheckIn: 0,
      refusedAttempts: { total: 0, byReason: {} },
    });
  }
  for (const r of checkIns.rows) {
    const x = out.get(pairKey(r.class_id, r.session_id))!;
    if (r.method === 'online_report') {
      x.onlineReports += Number(r.n);
      x.onlineMinutes += Number(r.minutes);
    } else {
      x.traineeCheckIns += Number(r.n);
    }
  }
  for (const r of reports.rows) {
    const x = out.get(pairKey(r.class_id, r.session_id))!;
    x.institutionReports = Number(r.n);
    x.reportsWithoutTraineeCheckIn = Number(r.unbacked);
    x.attended = Number(r.attended);
    x.attendancePct = x.enrolled === 0 ? null : Math.round((1000 * x.attended) / x.enrolled) / 10;
  }
  for (const r of refused.rows) {
    const x = out.get(pairKey(r.class_id, r.session_id))!;
    const code = r.reason_code ?? 'UNSPECIFIED';
    x.refusedAttempts.byReason[code] = (x.refusedAttempts.byReason[code] ?? 0) + Number(r.n);
    x.refusedAttempts.total += Number(r.n);
  }
  return out;
}

export function supervisionRoutes(deps: ApiDeps): Router {
  const { db, client, logger } = deps;
  const taskQueue = deps.taskQueue ?? VOUCHER_TASK_QUEUE;
  const now = deps.now ?? Date.now;
  const r = Router();
  const t = (ms: number) => localIso(ms, ZONE);

  /** The spot check if the caller may see it: HR of its district, or an operator; anything else is missing. */
  async function spotCheckOr404(req: Request, id: string, trx: Knex = db) {
    const row = await trx('spot_checks').where({ id }).first();
    const p = req.principal!;
    if (!row || (p.role === 'hr' && row.district !== p.district)) throw new Problem(404, 'SPOT_CHECK_NOT_FOUND');
    return row;
  }

  async function sessionsOf(items: ItemRow[]): Promise<Map<string, SessionInfo>> {
    if (items.length === 0) return new Map();
    const rows = await db('class_sessions as s')
      .whereIn(['s.class_id', 's.session_id'], items.map((i) => [i.class_id, i.session_id]))
      .select('s.class_id', 's.session_id', 's.starts_at', 's.ends_at', 's.minutes');
    return new Map(
      rows.map((x: { class_id: string; session_id: string; starts_at: Date; ends_at: Date; minutes: number }) => [
        pairKey(x.class_id, x.session_id),
        { startsAt: x.starts_at.getTime(), endsAt: x.ends_at.getTime(), minutes: x.minutes },
      ]),
    );
  }

  async function itemViews(items: ItemRow[]) {
    const [sessions, live, classes] = await Promise.all([
      sessionsOf(items),
      indicatorsFor(db, items.map((i) => ({ classId: i.class_id, sessionId: i.session_id }))),
      db('classes').whereIn('id', [...new Set(items.map((i) => i.class_id))]).select('id', 'mode'),
    ]);
    const modes = new Map(classes.map((c: { id: string; mode: 'online' | 'offline' }) => [c.id, c.mode]));
    const at = now();
    return items.map((i) => {
      // A session the institution took out of its plan after the draw (R4.2 allows it before the start) is `withdrawn`.
      const s = sessions.get(pairKey(i.class_id, i.session_id));
      return {
        itemNo: i.item_no,
        classId: i.class_id,
        sessionId: i.session_id,
        institutionId: i.institution_id,
        mode: modes.get(i.class_id)!,
        startsAt: s ? t(s.startsAt) : null,
        endsAt: s ? t(s.endsAt) : null,
        minutes: s ? s.minutes : null,
        phase: !s ? 'withdrawn' : at < s.startsAt ? 'scheduled' : at < s.endsAt ? 'in_progress' : 'ended',
        indicators: live.get(pairKey(i.class_id, i.session_id))!,
        finding:
          i.result === null
            ? null
            : { result: i.result, note: i.finding_note, recordedAt: t(i.finding_at!.getTime()), recordedBy: i.finding_by, strikeId: i.strike_id, indicators: i.indicators_at_finding },
      };
    });
  }

  function header(row: Record<string, unknown>, items: { result: FindingResult | null }[]) {
    return {
      id: row.id as string,
      district: row.district as string,
      createdBy: row.principal_id as string,
      createdAt: t((row.created_at as Date).getTime()),
      period: { from: t((row.period_from as Date).getTime()), to: t((row.period_to as Date).getTime()) },
      mode: (row.mode as string | null) ?? null,
      institutionId: (row.institution_id as string | null) ?? null,
      note: (row.note as string | null) ?? null,
      sampleSize: row.sample_size as number,
      draw: { candidates: row.candidates as number, seed: row.seed as string, method: 'sha256(seed:classId:sessionId) ascending' },
      findings: {
        drawn: items.length,
        recorded: items.filter((i) => i.result !== null).length,
        qualityProblems: items.filter((i) => i.result === 'quality_problem').length,
      },
    };
  }

  async function spotCheckView(row: Record<string, unknown>) {
    const items: ItemRow[] = await db('spot_check_items').where({ spot_check_id: row.id }).orderBy('item_no');
    return { ...header(row, items), items: await itemViews(items) };
  }

  // ---- draw a spot check (R4.3) --------------------------------------------------------------

  r.post(
    '/spot-checks',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(SpotCheckBody, req.body);
      const district = hrDistrict(req);
      const from = parseLocal(body.from, ZONE);
      const to = parseLocal(body.to, ZONE);
      if (to <= from) throw new Problem(400, 'INVALID_REQUEST', 'the period ends before it starts');
      if (body.institutionId) {
        // An institution another district supervises is as unknown as a missing one.
        const inst = await db('institutions').where({ id: body.institutionId }).first();
        if (!inst || inst.district !== district) throw new Problem(404, 'INSTITUTION_NOT_FOUND');
      }
      let q = db('class_sessions as s')
        .join('classes as c', 'c.id', 's.class_id')
        .join('institutions as i', 'i.id', 'c.institution_id')
        .where('i.district', district)
        .where('s.starts_at', '<', new Date(to))
        .where('s.ends_at', '>', new Date(from))
        .select('s.class_id', 's.session_id', 'c.institution_id');
      if (body.mode) q = q.where('c.mode', body.mode);
      if (body.institutionId) q = q.where('c.institution_id', body.institutionId);
      const candidates: { class_id: string; session_id: string; institution_id: string }[] = await q;
      if (candidates.length === 0) throw new Problem(422, 'NO_SESSIONS_IN_SCOPE', 'no session of an institution this district supervises falls in the period', 'R4.3');

      // R4.3: a random draw nobody picks by hand, and anyone can re-check from the seed.
      const seed = randomBytes(16).toString('hex');
      const drawn = candidates
        .map((c) => ({ ...c, rank: drawRank(seed, c.class_id, c.session_id) }))
        .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
        .slice(0, body.sampleSize);
      const id = `SC${randomBytes(6).toString('hex').toUpperCase()}`;
      await db.transaction(async (trx) => {
        await trx('spot_checks').insert({
          id,
          district,
          principal_id: req.principal!.id,
          period_from: new Date(from),
          period_to: new Date(to),
          mode: body.mode ?? null,
          institution_id: body.institutionId ?? null,
          sample_size: body.sampleSize,
          candidates: candidates.length,
          seed,
          note: body.note ?? null,
          created_at: new Date(now()),
        });
        await trx('spot_check_items').insert(drawn.map((d, k) => ({ spot_check_id: id, item_no: k + 1, class_id: d.class_id, session_id: d.session_id, institution_id: d.institution_id })));
      });
      logger.info({ spotCheckId: id, district, drawn: drawn.length, candidates: candidates.length }, 'spot check drawn');
      res.status(201).location(`/v1/spot-checks/${id}`).json(await spotCheckView(await spotCheckOr404(req, id)));
    }),
  );

  r.get(
    '/spot-checks',
    requireRole('hr', 'operator'),
    asyncRoute(async (req, res) => {
      const page = parse(ListQuery, req.query);
      const p = req.principal!;
      let q = db('spot_checks');
      if (p.role === 'hr') q = q.where({ district: hrDistrict(req) });
      const { rows, nextCursor } = await keysetPage(q, ['seq'], page, 'desc');
      const items: ItemRow[] = rows.length === 0 ? [] : await db('spot_check_items').whereIn('spot_check_id', rows.map((x) => x.id)).select('spot_check_id', 'result');
      res.json({ items: rows.map((row) => header(row, items.filter((i) => i.spot_check_id === row.id))), nextCursor });
    }),
  );

  r.get(
    '/spot-checks/:id',
    requireRole('hr', 'operator'),
    asyncRoute(async (req, res) => {
      res.json(await spotCheckView(await spotCheckOr404(req, String(req.params.id))));
    }),
  );

  // ---- record a finding (R4.3 → R4.4) --------------------------------------------------------

  r.put(
    '/spot-checks/:id/items/:itemNo/finding',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(FindingBody, req.body);
      const id = String(req.params.id);
      const itemNo = /^[0-9]{1,4}$/.test(String(req.params.itemNo)) ? Number(req.params.itemNo) : NaN;
      const by = req.principal!.id;
      const outcome = await db.transaction(async (trx) => {
        const check = await spotCheckOr404(req, id, trx);
        const item: ItemRow | undefined = Number.isInteger(itemNo) ? await trx('spot_check_items').where({ spot_check_id: id, item_no: itemNo }).forUpdate().first() : undefined;
        if (!item) throw new Problem(404, 'SPOT_CHECK_ITEM_NOT_FOUND');
        const strike = (strikeId: string, institutionId: string) =>
          recordStrike(trx, client, taskQueue, {
            id: strikeId,
            institutionId,
            kind: 'quality',
            evidence: `R4.3 spot check ${id}, class ${item.class_id} session ${item.session_id}: ${body.note}`,
            district: check.district,
            principalId: by,
            at: new Date(now()).toISOString(),
          });
        if (item.result !== null) {
          if (item.result !== body.result || item.finding_note !== body.note) {
            throw new Problem(409, 'FINDING_ALREADY_RECORDED', `item ${itemNo} already has a finding (${item.result}); findings are not changed`, 'R4.3');
          }
          // The same finding again (a retry): answered as before; its strike is delivered again (counted once).
          if (item.strike_id) await strike(item.strike_id, item.institution_id);
          return { created: false };
        }
        // A withdrawn session (gone from the plan) can be found wanting too: it was drawn, then cancelled.
        const session = await trx('class_sessions').where({ class_id: item.class_id, session_id: item.session_id }).first();
        if (session && now() < session.starts_at.getTime()) throw new Problem(409, 'SESSION_NOT_STARTED', 'a session is inspected once it has started', 'R4.3');
        let strikeId: string | null = null;
        if (body.result === 'quality_problem') {
          const inst = await trx('institutions').where({ id: item.institution_id }).first();
          if (inst.status !== 'approved' && inst.status !== 'rectification') throw new Problem(409, 'INSTITUTION_NOT_APPROVED', `status is ${inst.status}`, 'R4.4');
          // R4.4: a quality problem found in a spot check is a strike; its ID is the finding's, so a retry cannot add a second.
          strikeId = `spotcheck-${id}-${itemNo}`;
          await strike(strikeId, item.institution_id);
        }
        const live = (await indicatorsFor(trx, [{ classId: item.class_id, sessionId: item.session_id }])).get(pairKey(item.class_id, item.session_id));
        await trx('spot_check_items')
          .where({ spot_check_id: id, item_no: itemNo })
          .update({ result: body.result, finding_note: body.note, indicators_at_finding: JSON.stringify(live), finding_by: by, finding_at: new Date(now()), strike_id: strikeId });
        return { created: true };
      });
      if (outcome.created) logger.info({ spotCheckId: id, itemNo, result: body.result, by }, 'spot check finding recorded');
      const item: ItemRow = await db('spot_check_items').where({ spot_check_id: id, item_no: itemNo }).first();
      const [view] = await itemViews([item]);
      res.status(outcome.created ? 201 : 200).json({ spotCheckId: id, item: view! });
    }),
  );

  return r;
}
