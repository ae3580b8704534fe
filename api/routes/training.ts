/**
 * Routes of the training area (authenticated; mounted under /v1): institutions and their approval
 * (R4.1), classes with teaching plan and roster (R3.5, R4.2), the course search (R3.6), QR + geolocated
 * check-ins and online learning time (R3.10), the strike register (R4.4) and class completion (R4.2).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Router, type Request } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { z } from 'zod';
import { haversineMeters } from '../../lib/geo';
import { isValidResidentId, maskTail } from '../../lib/pii';
import { issueQrToken, newQrSecret, qrTokenHash, verifyQrToken } from '../../lib/qr-token';
import { localIso, parseLocal } from '../../policy/calendar';
import { isShaoxingDistrict } from '../../policy/districts';
import {
  classCompletionWorkflowId,
  institutionWorkflowId,
  type ClassCompletionInput,
  type InstitutionWorkflowInput,
} from '../../workflows/training/contract';
import { classCompletionQuery, institutionStateQuery, reapproveSignal } from '../../workflows/training/messages';
import { VOUCHER_NO_PATTERN, VOUCHER_TASK_QUEUE, VoucherStatus, voucherWorkflowId, type VoucherSnapshot } from '../../workflows/voucher/contract';
import { checkInSignal, stateQuery } from '../../workflows/voucher/messages';
import { hrDistrict, ownInstitutionId, requireRole } from '../auth';
import { asyncRoute, parse, type ApiDeps } from '../http';
import { freshReads } from '../single-flight';
import { Problem } from '../problem';
import { recordStrike } from '../strikes';
import { keyedIdFor } from '../idempotency';
import { policyInForceFromDb } from '../voucher-input';

const ZONE = 'Asia/Shanghai';

/**
 * A query to a workflow a signal has only just started can fail before its first workflow task is
 * done; ask up to three times, 150 ms apart. A missing workflow is answered at once.
 */
async function queryRetrying<T>(q: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await q();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}
const SEARCH_DEFAULT_LIMIT = 20;
const SEARCH_MAX_LIMIT = 100;

export const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
export const LocalDateTime = z.string().refine((s) => {
  try {
    parseLocal(s, ZONE);
    return true;
  } catch {
    return false;
  }
}, 'not an ISO-8601 date-time');
const ResidentId = z.string().refine(isValidResidentId, 'not a valid 18-character resident ID number');
const Lat = z.number().min(-90).max(90);
const Lng = z.number().min(-180).max(180);

const InstitutionBody = z
  .object({
    name: z.string().min(1).max(200),
    district: z.string().refine(isShaoxingDistrict, 'not a Shaoxing district'),
    bankAccount: z.string().regex(/^[0-9]{8,32}$/, '8–32 digits').optional(),
    /** A training institution (R2.5, R4.1), or an industry department that runs training (R2.6). */
    kind: z.enum(['training', 'industry_department']).optional(),
  })
  .strict();
const SessionBody = z.object({ sessionId: Id, startsAt: LocalDateTime, endsAt: LocalDateTime, minutes: z.number().int().positive().max(24 * 60) }).strict();
const SessionsBody = z.array(SessionBody).min(1).max(500);
const RosterBody = z.array(ResidentId).max(5000);
const ClassBody = z
  .object({
    occupationCode: z.string().regex(/^[0-9A-Za-z-]{1,20}$/),
    level: z.string().regex(/^[0-9A-Za-z-]{1,10}$/),
    trainingKind: z.enum(['certificate', 'project', 'special']),
    mode: z.enum(['online', 'offline']),
    venue: z.object({ lat: Lat, lng: Lng }).strict().optional(),
    capacity: z.number().int().positive().max(10_000),
    sessions: SessionsBody,
    roster: RosterBody,
  })
  .strict();
const CheckInBody = z.object({ voucherNo: z.string().regex(VOUCHER_NO_PATTERN), sessionId: Id, token: z.string().min(1).max(512), lat: Lat, lng: Lng }).strict();
const LearningTimeBody = z.object({ voucherNo: z.string().regex(VOUCHER_NO_PATTERN), minutes: z.number().int().positive().max(24 * 60) }).strict();
const StrikeBody = z.object({ kind: z.enum(['lax_review', 'quality']), evidence: z.string().min(1).max(2000) }).strict();
const CompletionBody = z
  .object({
    results: z
      .array(z.object({ voucherNo: z.string().regex(VOUCHER_NO_PATTERN), assessmentPassed: z.boolean(), certificateNo: z.string().min(1).max(64).optional() }).strict())
      .min(1)
      .max(5000),
  })
  .strict();
const SearchQuery = z
  .object({
    occupationCode: z.string().max(20).optional(),
    level: z.string().max(10).optional(),
    district: z.string().max(10).optional(),
    mode: z.enum(['online', 'offline']).optional(),
    startFrom: LocalDateTime.optional(),
    startTo: LocalDateTime.optional(),
    limit: z.string().regex(/^[0-9]{1,4}$/).optional(),
    cursor: z.string().max(300).optional(),
  })
  .strict();

interface PlannedSessionRow {
  sessionId: string;
  startsAt: number;
  endsAt: number;
  minutes: number;
}

function sessionsFromBody(list: z.infer<typeof SessionsBody>): PlannedSessionRow[] {
  const out = list.map((s) => ({ sessionId: s.sessionId, startsAt: parseLocal(s.startsAt, ZONE), endsAt: parseLocal(s.endsAt, ZONE), minutes: s.minutes }));
  const ids = new Set<string>();
  for (const s of out) {
    if (ids.has(s.sessionId)) throw new Problem(400, 'INVALID_REQUEST', `session ${s.sessionId} appears twice`);
    ids.add(s.sessionId);
    if (s.endsAt <= s.startsAt) throw new Problem(400, 'INVALID_REQUEST', `session ${s.sessionId} ends before it starts`);
    if (s.minutes * 60_000 > s.endsAt - s.startsAt) throw new Problem(400, 'INVALID_REQUEST', `session ${s.sessionId} has more minutes than its window`);
  }
  return out.sort((a, b) => a.startsAt - b.startsAt);
}

const firstStart = (s: PlannedSessionRow[]) => Math.min(...s.map((x) => x.startsAt));

function encodeCursor(firstStartMs: number, id: string): string {
  return Buffer.from(JSON.stringify([firstStartMs, id]), 'utf8').toString('base64url');
}

function decodeCursor(c: string): { firstStart: number; id: string } {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string') return { firstStart: v[0] as number, id: v[1] as string };
  } catch {
    /* fall through */
  }
  throw new Problem(400, 'INVALID_CURSOR', 'cursor is not one this API returned');
}

export function trainingRoutes(deps: ApiDeps): Router {
  const { db, client, pii, logger } = deps;
  const taskQueue = deps.taskQueue ?? VOUCHER_TASK_QUEUE;
  const now = deps.now ?? Date.now;
  const r = Router();
  const t = (ms: number) => localIso(ms, ZONE);

  // ---- helpers -------------------------------------------------------------------------------

  async function institutionOr404(id: string) {
    const row = await db('institutions').where({ id }).first();
    if (!row) throw new Problem(404, 'INSTITUTION_NOT_FOUND');
    return row;
  }

  function institutionView(row: Record<string, unknown>) {
    return { id: row.id, name: row.name, district: row.district, status: row.status };
  }

  /** A class the calling institution owns; any other (or a missing one) answers 404. */
  async function ownClass(req: Request, classId: string) {
    const p = req.principal!;
    const row = await db('classes').where({ id: classId }).first();
    if (!row || (p.role === 'institution' && row.institution_id !== p.institutionId)) throw new Problem(404, 'CLASS_NOT_FOUND');
    return row;
  }

  async function classSessions(classId: string): Promise<PlannedSessionRow[]> {
    const rows = await db('class_sessions').where({ class_id: classId }).orderBy('starts_at');
    return rows.map((x: { session_id: string; starts_at: Date; ends_at: Date; minutes: number }) => ({
      sessionId: x.session_id,
      startsAt: x.starts_at.getTime(),
      endsAt: x.ends_at.getTime(),
      minutes: x.minutes,
    }));
  }

  /** The class's QR secret; classes made before this area existed get one on first use. */
  async function classSecret(classId: string): Promise<string> {
    let row = await db('class_qr_secrets').where({ class_id: classId }).first();
    if (!row) {
      await db('class_qr_secrets').insert({ class_id: classId, secret_enc: pii.encrypt(newQrSecret()) }).onConflict('class_id').ignore();
      row = await db('class_qr_secrets').where({ class_id: classId }).first();
    }
    return pii.decrypt(row.secret_enc);
  }

  /** Concurrent reads of one voucher (a class scanning in at once) share one query started after they arrived. */
  const sharedRead = freshReads();
  async function voucherState(voucherNo: string): Promise<VoucherSnapshot | undefined> {
    try {
      return await sharedRead(voucherNo, () => client.workflow.getHandle(voucherWorkflowId(voucherNo)).query(stateQuery));
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) return undefined;
      throw e;
    }
  }

  function sessionView(s: PlannedSessionRow) {
    return { sessionId: s.sessionId, startsAt: t(s.startsAt), endsAt: t(s.endsAt), minutes: s.minutes };
  }

  async function classView(row: Record<string, unknown>) {
    const sessions = await classSessions(String(row.id));
    const enrolled = await db('enrolments').where({ class_id: row.id }).count<{ n: string }[]>({ n: '*' });
    const rosterSize = await db('class_roster').where({ class_id: row.id }).count<{ n: string }[]>({ n: '*' });
    return {
      classId: row.id,
      institutionId: row.institution_id,
      occupationCode: row.occupation_code,
      level: row.level,
      trainingKind: row.training_kind,
      mode: row.mode,
      venue: row.venue_lat === null || row.venue_lat === undefined ? null : { lat: row.venue_lat, lng: row.venue_lng },
      capacity: row.capacity,
      enrolled: Number(enrolled[0]?.n ?? 0),
      rosterSize: Number(rosterSize[0]?.n ?? 0),
      sessions: sessions.map(sessionView),
    };
  }

  // ---- institutions (R4.1) ------------------------------------------------------------------

  r.post(
    '/institutions',
    requireRole('operator', 'hr'),
    asyncRoute(async (req, res) => {
      const body = parse(InstitutionBody, req.body);
      const id = `INST${randomBytes(6).toString('hex').toUpperCase()}`;
      await db.transaction(async (trx) => {
        await trx('institutions').insert({ id, name: body.name, district: body.district, kind: body.kind ?? 'training', status: 'pending', bank_account_enc: body.bankAccount ? pii.encrypt(body.bankAccount) : null });
        await trx('institution_approvals').insert({ institution_id: id, kind: 'applied', district: req.principal!.district, principal_id: req.principal!.id, at: new Date(now()).toISOString() });
        // R3.13: the account money goes to; its first registration is audited like later corrections.
        if (body.bankAccount) {
          await trx('account_changes').insert({ institution_id: id, old_masked: null, new_masked: maskTail(body.bankAccount), principal_id: req.principal!.id, changed_at: new Date(now()).toISOString() });
        }
      });
      res.status(201).location(`/v1/institutions/${id}`).json({ id, name: body.name, district: body.district, status: 'pending' });
    }),
  );

  r.get(
    '/institutions/:id',
    requireRole('operator', 'hr', 'institution'),
    asyncRoute(async (req, res) => {
      const p = req.principal!;
      const id = String(req.params.id);
      if (p.role === 'institution' && p.institutionId !== id) throw new Problem(404, 'INSTITUTION_NOT_FOUND');
      const row = await institutionOr404(id);
      const approvals = await db('institution_approvals').where({ institution_id: id }).whereIn('kind', ['approve', 'reapprove']).orderBy('id');
      res.json({
        ...institutionView(row),
        approvals: approvals.map((a: { kind: string; district: string | null; at: Date }) => ({ kind: a.kind, district: a.district, at: t(a.at.getTime()) })),
      });
    }),
  );

  r.post(
    '/institutions/:id/approve',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      await institutionOr404(id);
      const district = hrDistrict(req);
      const changed = await db.transaction(async (trx) => {
        const n = await trx('institutions').where({ id, status: 'pending' }).update({ status: 'approved' });
        if (n === 0) return false;
        await trx('institution_approvals').insert({ institution_id: id, kind: 'approve', district, principal_id: req.principal!.id, at: new Date(now()).toISOString() });
        return true;
      });
      if (!changed) throw new Problem(409, 'INSTITUTION_NOT_PENDING', 'only a pending application can be approved', 'R4.1');
      res.json({ ...institutionView(await institutionOr404(id)), approvedBy: district });
    }),
  );

  // ---- strikes and rectification (R4.4) -----------------------------------------------------

  const startInstitution = (institutionId: string) => ({
    workflowId: institutionWorkflowId(institutionId),
    taskQueue,
    args: [{ institutionId } satisfies InstitutionWorkflowInput] as [InstitutionWorkflowInput],
  });

  r.post(
    '/institutions/:id/strikes',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(StrikeBody, req.body);
      const id = String(req.params.id);
      const inst = await institutionOr404(id);
      if (inst.status !== 'approved' && inst.status !== 'rectification') {
        throw new Problem(409, 'INSTITUTION_NOT_APPROVED', `status is ${inst.status}`, 'R4.4');
      }
      // With an Idempotency-Key the ID follows from it, so a rerun of the request records the same strike.
      const strikeId = keyedIdFor('strike', req) ?? randomUUID();
      // R4.4: the register row and the workflow's count together, or (Temporal unreachable) neither.
      await db.transaction((trx) =>
        recordStrike(trx, client, taskQueue, {
          id: strikeId,
          institutionId: id,
          kind: body.kind,
          evidence: body.evidence,
          district: req.principal!.district ?? null,
          principalId: req.principal!.id,
          at: new Date(now()).toISOString(),
        }),
      );
      logger.info({ institutionId: id, kind: body.kind, by: req.principal!.id }, 'strike recorded');
      res.status(202).json({ strikeId, institutionId: id, kind: body.kind });
    }),
  );

  r.post(
    '/institutions/:id/reapprove',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      parse(z.object({}).strict(), req.body ?? {});
      const id = String(req.params.id);
      const inst = await institutionOr404(id);
      if (inst.status !== 'rectification') throw new Problem(409, 'INSTITUTION_NOT_UNDER_RECTIFICATION', `status is ${inst.status}`, 'R4.4');
      // The audit row and the signal together: with Temporal unreachable neither happens (503).
      await db.transaction(async (trx) => {
        await trx('institution_approvals').insert({ institution_id: id, kind: 'reapprove', district: req.principal!.district, principal_id: req.principal!.id, at: new Date(now()).toISOString() });
        await client.workflow.signalWithStart('institutionWorkflow', { ...startInstitution(id), signal: reapproveSignal, signalArgs: [{ by: req.principal!.id }] });
      });
      res.status(202).json({ institutionId: id, accepted: true });
    }),
  );

  r.get(
    '/institutions/:id/strikes',
    requireRole('operator', 'hr'),
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const inst = await institutionOr404(id);
      try {
        const s = await queryRetrying(() => client.workflow.getHandle(institutionWorkflowId(id)).query(institutionStateQuery));
        res.json({ ...s, strikes: s.strikes.map((x) => ({ ...x, at: t(x.at), expiresAt: t(x.expiresAt) })), rectifiedAt: s.rectifiedAt === undefined ? null : t(s.rectifiedAt) });
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError)) throw e;
        res.json({ institutionId: id, status: inst.status, strikes: [], counts: { lax_review: 0, quality: 0 }, rectifiedAt: null });
      }
    }),
  );

  // ---- classes (R3.5, R4.2) -----------------------------------------------------------------

  r.post(
    '/classes',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(ClassBody, req.body);
      const institutionId = ownInstitutionId(req);
      const inst = await institutionOr404(institutionId);
      if (inst.status === 'rectification') throw new Problem(422, 'INSTITUTION_UNDER_RECTIFICATION', 'no new classes while under rectification', 'R4.4');
      if (inst.status !== 'approved') throw new Problem(422, 'INSTITUTION_NOT_APPROVED', `status is ${inst.status}`, 'R4.1');
      if (body.mode === 'offline' && !body.venue) throw new Problem(400, 'VENUE_REQUIRED', 'an offline class needs the venue coordinates', 'R3.10');
      const sessions = sessionsFromBody(body.sessions);
      // R4.2: plan and roster are entered before the class starts.
      if (firstStart(sessions) <= now()) throw new Problem(422, 'CLASS_ALREADY_STARTED', 'the teaching plan must be entered before the first session', 'R4.2');
      const refs = [...new Set(body.roster.map((n) => pii.personRef(n)))];
      const classId = `CLS${randomBytes(6).toString('hex').toUpperCase()}`;
      await db.transaction(async (trx) => {
        await trx('classes').insert({
          id: classId,
          institution_id: institutionId,
          occupation_code: body.occupationCode,
          level: body.level,
          training_kind: body.trainingKind,
          mode: body.mode,
          capacity: body.capacity,
          venue_lat: body.mode === 'offline' ? body.venue!.lat : null,
          venue_lng: body.mode === 'offline' ? body.venue!.lng : null,
        });
        await trx('class_qr_secrets').insert({ class_id: classId, secret_enc: pii.encrypt(newQrSecret()) });
        await trx('class_sessions').insert(
          sessions.map((s) => ({ class_id: classId, session_id: s.sessionId, starts_at: new Date(s.startsAt).toISOString(), ends_at: new Date(s.endsAt).toISOString(), minutes: s.minutes })),
        );
        if (refs.length > 0) await trx('class_roster').insert(refs.map((p) => ({ class_id: classId, person_ref: p })));
      });
      const row = await db('classes').where({ id: classId }).first();
      res.status(201).location(`/v1/classes/${classId}`).json(await classView(row));
    }),
  );

  r.get(
    '/classes/:classId',
    asyncRoute(async (req, res) => {
      const row = await ownClass(req, String(req.params.classId));
      res.json(await classView(row));
    }),
  );

  r.put(
    '/classes/:classId/roster',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(z.object({ roster: RosterBody }).strict(), req.body);
      const cls = await ownClass(req, String(req.params.classId));
      const sessions = await classSessions(cls.id);
      const refs = [...new Set(body.roster.map((n) => pii.personRef(n)))].sort();
      const afterStart = sessions.length > 0 && firstStart(sessions) <= now();
      await db.transaction(async (trx) => {
        const before = (await trx('class_roster').where({ class_id: cls.id }).forUpdate().select('person_ref')).map((x: { person_ref: string }) => x.person_ref).sort();
        await trx('class_roster').where({ class_id: cls.id }).del();
        if (refs.length > 0) await trx('class_roster').insert(refs.map((p) => ({ class_id: cls.id, person_ref: p })));
        await trx('class_changes').insert({
          class_id: cls.id,
          kind: 'roster',
          after_start: afterStart,
          before: JSON.stringify(before),
          after: JSON.stringify(refs),
          principal_id: req.principal!.id,
          changed_at: new Date(now()).toISOString(),
        });
      });
      res.json({ ...(await classView(cls)), changeRecorded: true, afterStart });
    }),
  );

  r.put(
    '/classes/:classId/sessions',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(z.object({ sessions: SessionsBody }).strict(), req.body);
      const cls = await ownClass(req, String(req.params.classId));
      const next = sessionsFromBody(body.sessions);
      const before = await classSessions(cls.id);
      const at = now();
      const afterStart = before.length > 0 && firstStart(before) <= at;
      // A session that has started is history: it stays, unchanged.
      const key = (s: PlannedSessionRow) => `${s.sessionId}|${s.startsAt}|${s.endsAt}|${s.minutes}`;
      const nextKeys = new Set(next.map(key));
      const beforeKeys = new Set(before.map(key));
      for (const s of before) {
        if (s.startsAt <= at && !nextKeys.has(key(s))) throw new Problem(422, 'SESSION_ALREADY_STARTED', `session ${s.sessionId} has started and cannot change`, 'R4.2');
      }
      for (const s of next) {
        if (s.startsAt <= at && !beforeKeys.has(key(s))) throw new Problem(422, 'SESSION_ALREADY_STARTED', `session ${s.sessionId} would start in the past`, 'R4.2');
      }
      await db.transaction(async (trx) => {
        await trx('classes').where({ id: cls.id }).forUpdate().first();
        await trx('class_sessions').where({ class_id: cls.id }).del();
        await trx('class_sessions').insert(
          next.map((s) => ({ class_id: cls.id, session_id: s.sessionId, starts_at: new Date(s.startsAt).toISOString(), ends_at: new Date(s.endsAt).toISOString(), minutes: s.minutes })),
        );
        await trx('class_changes').insert({
          class_id: cls.id,
          kind: 'sessions',
          after_start: afterStart,
          before: JSON.stringify(before),
          after: JSON.stringify(next),
          principal_id: req.principal!.id,
          changed_at: new Date(at).toISOString(),
        });
      });
      res.json({ ...(await classView(cls)), changeRecorded: true, afterStart });
    }),
  );

  // ---- course search (R3.6) -----------------------------------------------------------------

  r.get(
    '/classes',
    asyncRoute(async (req, res) => {
      const q = parse(SearchQuery, req.query);
      const limit = q.limit === undefined ? SEARCH_DEFAULT_LIMIT : Number(q.limit);
      if (limit < 1 || limit > SEARCH_MAX_LIMIT) throw new Problem(400, 'INVALID_REQUEST', `limit must be 1..${SEARCH_MAX_LIMIT}`);
      const at = now();
      const sessionAgg = db('class_sessions')
        .select('class_id')
        .min({ first_start: 'starts_at' })
        .count({ session_count: '*' })
        .sum({ total_minutes: 'minutes' })
        .groupBy('class_id')
        .as('s');
      const enrolAgg = db('enrolments').select('class_id').count({ n: '*' }).groupBy('class_id').as('e');
      const query = db('classes as c')
        .join('institutions as i', 'i.id', 'c.institution_id')
        .join(sessionAgg, 's.class_id', 'c.id')
        .leftJoin(enrolAgg, 'e.class_id', 'c.id')
        .where('i.status', 'approved')
        .andWhere('s.first_start', '>', new Date(at).toISOString())
        .andWhereRaw('c.capacity - coalesce(e.n, 0) > 0')
        .select(
          'c.id',
          'c.institution_id',
          'i.name as institution_name',
          'i.district',
          'c.occupation_code',
          'c.level',
          'c.training_kind',
          'c.mode',
          'c.capacity',
          's.first_start',
          's.session_count',
          's.total_minutes',
          db.raw('c.capacity - coalesce(e.n, 0) as seats_left'),
        )
        .orderBy([{ column: 's.first_start' }, { column: 'c.id' }])
        .limit(limit + 1);
      if (q.occupationCode) query.andWhere('c.occupation_code', q.occupationCode);
      if (q.level) query.andWhere('c.level', q.level);
      if (q.district) query.andWhere('i.district', q.district);
      if (q.mode) query.andWhere('c.mode', q.mode);
      if (q.startFrom) query.andWhere('s.first_start', '>=', new Date(parseLocal(q.startFrom, ZONE)).toISOString());
      if (q.startTo) query.andWhere('s.first_start', '<=', new Date(parseLocal(q.startTo, ZONE)).toISOString());
      if (q.cursor) {
        const c = decodeCursor(q.cursor);
        query.andWhereRaw('(s.first_start, c.id) > (?::timestamptz, ?)', [new Date(c.firstStart).toISOString(), c.id]);
      }
      const rows = (await query) as Array<Record<string, unknown> & { id: string; first_start: Date }>;
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      res.json({
        items: page.map((x) => ({
          classId: x.id,
          institutionId: x.institution_id,
          institutionName: x.institution_name,
          district: x.district,
          occupationCode: x.occupation_code,
          level: x.level,
          trainingKind: x.training_kind,
          mode: x.mode,
          capacity: x.capacity,
          seatsLeft: Number(x.seats_left),
          firstSessionAt: t(x.first_start.getTime()),
          sessionCount: Number(x.session_count),
          totalMinutes: Number(x.total_minutes),
        })),
        nextCursor: rows.length > limit && last ? encodeCursor(last.first_start.getTime(), last.id) : null,
      });
    }),
  );

  // ---- QR codes and check-ins (R3.10) -------------------------------------------------------

  r.get(
    '/classes/:classId/sessions/:sessionId/qr',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const cls = await ownClass(req, String(req.params.classId));
      const sessionId = String(req.params.sessionId);
      const session = (await classSessions(cls.id)).find((s) => s.sessionId === sessionId);
      if (!session) throw new Problem(404, 'SESSION_NOT_FOUND');
      if (cls.mode !== 'offline') throw new Problem(422, 'CLASS_NOT_OFFLINE', 'online sessions report learning time instead', 'R3.10');
      const policy = await policyInForceFromDb(db, now());
      const q = issueQrToken(await classSecret(cls.id), cls.id, sessionId, now(), policy.qrTokenWindowSeconds);
      res.setHeader('cache-control', 'no-store');
      res.json({ classId: cls.id, sessionId, token: q.token, validFrom: t(q.validFrom), validUntil: t(q.validUntil) });
    }),
  );

  r.post(
    '/check-ins',
    requireRole('holder'),
    asyncRoute(async (req, res) => {
      const body = parse(CheckInBody, req.body);
      const at = now();
      const tokenHash = qrTokenHash(body.token);
      const attempt = {
        voucher_no: body.voucherNo,
        class_id: null as string | null,
        session_id: body.sessionId,
        principal_id: req.principal!.id,
        method: 'qr_geo',
        token_hash: tokenHash,
        coords_enc: pii.encrypt(JSON.stringify({ lat: body.lat, lng: body.lng })),
        distance_m: null as number | null,
        attempted_at: new Date(at).toISOString(),
      };
      const refuse = async (p: Problem): Promise<never> => {
        await db('check_in_attempts').insert({ ...attempt, verdict: 'refused', reason_code: p.code });
        throw p;
      };

      const s = await voucherState(body.voucherNo);
      if (!s || s.personRef !== req.principal!.personRef) return refuse(new Problem(404, 'VOUCHER_NOT_FOUND'));
      if (!s.classPlan) return refuse(new Problem(409, 'VOUCHER_NOT_ON_CLASS', `the voucher is not enrolled in a class (status ${s.status})`, 'R3.10'));
      if (s.status !== VoucherStatus.InTraining) return refuse(new Problem(409, 'VOUCHER_NOT_IN_TRAINING', `status is ${s.status}`, 'R3.10'));
      const cls = await db('classes').where({ id: s.classPlan.classId }).first();
      attempt.class_id = cls.id;
      if (cls.mode !== 'offline' || cls.venue_lat === null) {
        return refuse(new Problem(422, 'CLASS_NOT_OFFLINE', 'online sessions count reported learning time', 'R3.10'));
      }
      attempt.distance_m = Math.round(haversineMeters({ lat: body.lat, lng: body.lng }, { lat: cls.venue_lat, lng: cls.venue_lng }));
      const planned = s.sessions.find((x) => x.sessionId === body.sessionId);
      const session = (await classSessions(cls.id)).find((x) => x.sessionId === body.sessionId);
      if (!planned || !session) return refuse(new Problem(422, 'SESSION_NOT_IN_PLAN', `no session ${body.sessionId} in the teaching plan`, 'R3.10'));
      const policy = await policyInForceFromDb(db, at);

      const v = verifyQrToken(await classSecret(cls.id), body.token, { classId: cls.id, sessionId: body.sessionId }, at, policy.qrTokenWindowSeconds);
      if (!v.ok) return refuse(new Problem(422, v.code, v.detail, 'R3.10'));
      const prior = await db('check_ins').where({ voucher_no: s.voucherNo, session_id: body.sessionId }).first();
      if (prior) {
        return refuse(
          prior.token_hash === tokenHash
            ? new Problem(409, 'QR_TOKEN_REPLAYED', 'this code has already been used for this voucher', 'R3.10')
            : new Problem(409, 'SESSION_ALREADY_CHECKED_IN', 'this session is already counted for this voucher', 'R3.10'),
        );
      }
      if (at < session.startsAt || at > session.endsAt) {
        return refuse(new Problem(422, 'CHECK_IN_OUTSIDE_SESSION', `the session runs ${t(session.startsAt)} to ${t(session.endsAt)}`, 'R3.10'));
      }
      if (attempt.distance_m > policy.checkInRadiusMeters) {
        return refuse(new Problem(422, 'CHECK_IN_TOO_FAR', `${attempt.distance_m} m from the venue; the limit is ${policy.checkInRadiusMeters} m`, 'R3.10'));
      }

      const minutes = Math.min(planned.minutes, session.minutes);
      const accepted = await db.transaction(async (trx) => {
        const ins = await trx('check_ins')
          .insert({ voucher_no: s.voucherNo, session_id: body.sessionId, class_id: cls.id, method: 'qr_geo', token_hash: tokenHash, minutes, accepted_at: new Date(at).toISOString() })
          .onConflict(['voucher_no', 'session_id'])
          .ignore()
          .returning('voucher_no');
        if (ins.length === 0) return false;
        await trx('check_in_attempts').insert({ ...attempt, verdict: 'accepted', reason_code: null, minutes });
        // Inside the transaction: if the signal cannot be sent, nothing is recorded as counted.
        await client.workflow.getHandle(voucherWorkflowId(s.voucherNo)).signal(checkInSignal, { sessionId: body.sessionId, verifiedMinutes: minutes, at });
        return true;
      });
      if (!accepted) return refuse(new Problem(409, 'SESSION_ALREADY_CHECKED_IN', 'this session is already counted for this voucher', 'R3.10'));
      res.status(202).json({ voucherNo: s.voucherNo, sessionId: body.sessionId, counted: true, verifiedMinutes: minutes, distanceMeters: attempt.distance_m });
    }),
  );

  r.post(
    '/classes/:classId/sessions/:sessionId/learning-time',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(LearningTimeBody, req.body);
      const cls = await ownClass(req, String(req.params.classId));
      const sessionId = String(req.params.sessionId);
      const at = now();
      const attempt = {
        voucher_no: body.voucherNo,
        class_id: cls.id,
        session_id: sessionId,
        principal_id: req.principal!.id,
        method: 'online_report',
        attempted_at: new Date(at).toISOString(),
      };
      const refuse = async (p: Problem): Promise<never> => {
        await db('check_in_attempts').insert({ ...attempt, verdict: 'refused', reason_code: p.code, minutes: body.minutes });
        throw p;
      };
      const session = (await classSessions(cls.id)).find((x) => x.sessionId === sessionId);
      if (!session) throw new Problem(404, 'SESSION_NOT_FOUND');
      if (cls.mode !== 'online') return refuse(new Problem(422, 'CLASS_NOT_ONLINE', 'offline sessions count QR + geolocated check-ins', 'R3.10'));
      const s = await voucherState(body.voucherNo);
      if (!s || s.classPlan?.classId !== cls.id) return refuse(new Problem(422, 'VOUCHER_NOT_ON_CLASS', 'the voucher is not enrolled in this class', 'R3.10'));
      if (s.status !== VoucherStatus.InTraining) return refuse(new Problem(409, 'VOUCHER_NOT_IN_TRAINING', `status is ${s.status}`, 'R3.10'));
      const planned = s.sessions.find((x) => x.sessionId === sessionId);
      if (!planned) return refuse(new Problem(422, 'SESSION_NOT_IN_PLAN', `no session ${sessionId} in the voucher's plan`, 'R3.10'));
      if (at < session.startsAt) return refuse(new Problem(422, 'SESSION_NOT_STARTED', 'learning time is reported once the session has opened', 'R3.10'));
      const minutes = Math.min(body.minutes, planned.minutes, session.minutes);
      const accepted = await db.transaction(async (trx) => {
        const ins = await trx('check_ins')
          .insert({ voucher_no: s.voucherNo, session_id: sessionId, class_id: cls.id, method: 'online_report', token_hash: null, minutes, accepted_at: new Date(at).toISOString() })
          .onConflict(['voucher_no', 'session_id'])
          .ignore()
          .returning('voucher_no');
        if (ins.length === 0) return false;
        await trx('check_in_attempts').insert({ ...attempt, verdict: 'accepted', reason_code: null, minutes });
        await client.workflow.getHandle(voucherWorkflowId(s.voucherNo)).signal(checkInSignal, { sessionId, verifiedMinutes: minutes, at });
        return true;
      });
      if (!accepted) return refuse(new Problem(409, 'SESSION_ALREADY_REPORTED', 'learning time for this session is already counted', 'R3.10'));
      res.status(202).json({ voucherNo: s.voucherNo, sessionId, counted: true, verifiedMinutes: minutes, capped: minutes < body.minutes });
    }),
  );

  // ---- class completion (R4.2) --------------------------------------------------------------

  r.post(
    '/classes/:classId/completion',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(CompletionBody, req.body);
      const cls = await ownClass(req, String(req.params.classId));
      const sessions = await classSessions(cls.id);
      const lastEnd = Math.max(...sessions.map((s) => s.endsAt));
      if (sessions.length === 0 || now() < lastEnd) throw new Problem(409, 'CLASS_NOT_FINISHED', `the last session ends ${sessions.length ? t(lastEnd) : 'never'}`, 'R4.2');
      if (await db('class_completions').where({ class_id: cls.id }).first()) throw new Problem(409, 'COMPLETION_ALREADY_SUBMITTED', undefined, 'R4.2');
      const nos = body.results.map((x) => x.voucherNo);
      if (new Set(nos).size !== nos.length) throw new Problem(400, 'INVALID_REQUEST', 'a voucher appears twice in the results');
      const enrolled = new Set((await db('enrolments').where({ class_id: cls.id }).select('voucher_no')).map((x: { voucher_no: string }) => x.voucher_no));
      const strangers = nos.filter((n) => !enrolled.has(n));
      if (strangers.length > 0) throw new Problem(422, 'VOUCHER_NOT_ON_CLASS', `not enrolled in this class: ${strangers.join(', ')}`, 'R4.2');
      const missing = [...enrolled].filter((n) => !nos.includes(n));
      if (missing.length > 0) throw new Problem(422, 'RESULTS_INCOMPLETE', `no result for: ${missing.join(', ')}`, 'R4.2');
      const input: ClassCompletionInput = {
        classId: cls.id,
        institutionId: cls.institution_id,
        results: body.results.map((x) => ({ voucherNo: x.voucherNo, assessmentPassed: x.assessmentPassed, ...(x.certificateNo ? { certificateNo: x.certificateNo } : {}) })),
      };
      try {
        await db.transaction(async (trx) => {
          const ins = await trx('class_completions')
            .insert({ class_id: cls.id, principal_id: req.principal!.id, results: JSON.stringify(input.results), submitted_at: new Date(now()).toISOString() })
            .onConflict('class_id')
            .ignore()
            .returning('class_id');
          if (ins.length === 0) throw new Problem(409, 'COMPLETION_ALREADY_SUBMITTED', undefined, 'R4.2');
          await client.workflow.start('classCompletionWorkflow', {
            workflowId: classCompletionWorkflowId(cls.id),
            taskQueue,
            args: [input],
            workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          });
        });
      } catch (e) {
        if (e instanceof WorkflowExecutionAlreadyStartedError) throw new Problem(409, 'COMPLETION_ALREADY_SUBMITTED', undefined, 'R4.2');
        throw e;
      }
      res.status(202).location(`/v1/classes/${cls.id}/completion`).json({ classId: cls.id, accepted: true, trainees: input.results.length });
    }),
  );

  r.get(
    '/classes/:classId/completion',
    requireRole('institution', 'hr', 'operator'),
    asyncRoute(async (req, res) => {
      const cls = await ownClass(req, String(req.params.classId));
      try {
        res.json(await client.workflow.getHandle(classCompletionWorkflowId(cls.id)).query(classCompletionQuery));
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) throw new Problem(404, 'COMPLETION_NOT_FOUND');
        throw e;
      }
    }),
  );

  return r;
}
