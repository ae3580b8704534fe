/**
 * Training plans of industry departments (R2.6, authenticated; mounted under /v1). A department files a
 * plan — trainees, subsidy standard, funding source, period — with the HR bureau and the finance bureau
 * of its district; each bureau acknowledges receipt; once both have, the department uploads its trainee
 * lists under the plan (POST /v1/trainee-lists with `planId`) and HR makes the vouchers from them.
 *
 * Who sees a plan: the department that filed it, HR of the plan's district, finance of that district or
 * city-wide, and operators. Everyone else gets 404, exactly as for a plan that does not exist.
 */
import { createHash } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { FUNDING_SOURCES } from '../../activities/settlement-decision';
import type { Db } from '../../db/connection';
import { localIso } from '../../policy/calendar';
import { isShaoxingDistrict } from '../../policy/districts';
import { ownInstitutionId, requireRole, type Principal } from '../auth';
import { planPerformance } from '../performance';
import { asyncRoute, parse, type ApiDeps } from '../http';
import { Problem } from '../problem';

export const PLAN_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const ISO_DATE = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD').refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().slice(0, 10) === d, 'not a calendar date');

const PlanBody = z
  .object({
    planId: z.string().regex(PLAN_ID_PATTERN, 'planId: 1–64 of A–Z a–z 0–9 _ -'),
    district: z.string().refine((d) => isShaoxingDistrict(d), 'district: one of the six Shaoxing district codes'),
    occupationCode: z.string().regex(/^[0-9A-Za-z-]{1,20}$/),
    trainees: z.number().int().positive().max(200_000),
    subsidyStandardFen: z.number().int().positive().max(100_000_000),
    fundingSource: z.enum(FUNDING_SOURCES),
    periodFrom: ISO_DATE,
    periodTo: ISO_DATE,
    note: z.string().max(2000).optional(),
  })
  .strict();

const ListQuery = z
  .object({
    district: z.string().regex(/^[0-9]{6}$/).optional(),
    status: z.enum(['filed', 'accepted']).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
  })
  .strict();

interface PlanRow {
  plan_id: string;
  department_id: string;
  district: string;
  occupation_code: string;
  trainees: number;
  subsidy_standard_fen: string | number;
  funding_source: string;
  period_from: string | Date;
  period_to: string | Date;
  note: string | null;
  content_hash: string;
  filed_at: Date;
  hr_ack_by: string | null;
  hr_ack_at: Date | null;
  finance_ack_by: string | null;
  finance_ack_at: Date | null;
}

/** Accepted once the HR and the finance bureau have both acknowledged the filing (R2.6). */
export function planAccepted(p: { hr_ack_at: Date | null; finance_ack_at: Date | null }): boolean {
  return !!p.hr_ack_at && !!p.finance_ack_at;
}

/** Whether a principal may see a plan (and act on it within their role). */
function inScope(p: Principal, plan: PlanRow): boolean {
  switch (p.role) {
    case 'operator':
      return true;
    case 'hr':
      return p.district === plan.district;
    case 'finance':
      return !p.district || p.district === plan.district;
    case 'institution':
      return p.institutionId === plan.department_id;
    default:
      return false;
  }
}

const day = (v: string | Date) => (typeof v === 'string' ? v.slice(0, 10) : localIso(v.getTime(), 'Asia/Shanghai').slice(0, 10));

/** Trainees named so far by the lists uploaded under each plan (one grouped query for a page). */
async function listedTrainees(db: Db, planIds: string[]): Promise<Map<string, number>> {
  if (!planIds.length) return new Map();
  const rows = await db('trainee_lists').whereIn('plan_id', planIds).select('plan_id').sum<{ plan_id: string; n: string }[]>({ n: 'total' }).groupBy('plan_id');
  return new Map(rows.map((r) => [r.plan_id, Number(r.n)]));
}

async function planView(db: Db, plan: PlanRow) {
  return planViewOf(plan, (await listedTrainees(db, [plan.plan_id])).get(plan.plan_id) ?? 0);
}

function planViewOf(plan: PlanRow, listed: number) {
  const t = (d: Date | null) => (d ? localIso(d.getTime(), 'Asia/Shanghai') : null);
  return {
    planId: plan.plan_id,
    departmentId: plan.department_id,
    district: plan.district,
    occupationCode: plan.occupation_code,
    trainees: plan.trainees,
    subsidyStandardFen: Number(plan.subsidy_standard_fen),
    fundingSource: plan.funding_source,
    periodFrom: day(plan.period_from),
    periodTo: day(plan.period_to),
    note: plan.note,
    status: planAccepted(plan) ? 'accepted' : 'filed',
    filedAt: t(plan.filed_at),
    hrAcknowledgedAt: t(plan.hr_ack_at),
    financeAcknowledgedAt: t(plan.finance_ack_at),
    listedTrainees: listed,
  };
}

export function planRoutes(deps: ApiDeps): Router {
  const { db, logger } = deps;
  const now = deps.now ?? Date.now;
  const r = Router();

  async function visiblePlan(req: Request): Promise<PlanRow> {
    const id = String(req.params.planId);
    const plan: PlanRow | undefined = PLAN_ID_PATTERN.test(id) ? await db('training_plans').where({ plan_id: id }).first() : undefined;
    if (!plan || !inScope(req.principal!, plan)) throw new Problem(404, 'PLAN_NOT_FOUND');
    return plan;
  }

  // ---- file a plan (an approved industry department; R2.6) -------------------------------------
  r.post(
    '/training-plans',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(PlanBody, req.body);
      const dept = await db('institutions').where({ id: ownInstitutionId(req) }).first();
      if (!dept) throw new Problem(403, 'FORBIDDEN_SCOPE', 'institution principal has no institution');
      if (dept.kind !== 'industry_department') throw new Problem(403, 'NOT_AN_INDUSTRY_DEPARTMENT', 'only industry departments file training plans', 'R2.6');
      if (dept.status !== 'approved') throw new Problem(422, 'INSTITUTION_NOT_APPROVED', `the department is ${dept.status}, not approved`, 'R2.6');
      if (body.periodFrom > body.periodTo) throw new Problem(400, 'INVALID_REQUEST', 'periodFrom is after periodTo');
      const hash = createHash('sha256')
        .update(JSON.stringify([dept.id, body.district, body.occupationCode, body.trainees, body.subsidyStandardFen, body.fundingSource, body.periodFrom, body.periodTo, body.note ?? null]))
        .digest('hex');
      const inserted = await db('training_plans')
        .insert({
          plan_id: body.planId,
          department_id: dept.id,
          district: body.district,
          occupation_code: body.occupationCode,
          trainees: body.trainees,
          subsidy_standard_fen: body.subsidyStandardFen,
          funding_source: body.fundingSource,
          period_from: body.periodFrom,
          period_to: body.periodTo,
          note: body.note ?? null,
          content_hash: hash,
          filed_by: req.principal!.id,
          filed_at: new Date(now()),
        })
        .onConflict('plan_id')
        .ignore()
        .returning('plan_id');
      const plan: PlanRow = await db('training_plans').where({ plan_id: body.planId }).first();
      if (!inserted.length && (plan.content_hash !== hash || plan.department_id !== dept.id)) {
        throw new Problem(409, 'PLAN_ID_CONFLICT', `plan ${body.planId} was filed with other content`, 'R2.6');
      }
      if (inserted.length) logger.info({ planId: body.planId, district: body.district, by: req.principal!.id }, 'training plan filed');
      res.status(inserted.length ? 201 : 200).location(`/v1/training-plans/${body.planId}`).json(await planView(db, plan));
    }),
  );

  // ---- list (scoped, cursor) --------------------------------------------------------------------
  r.get(
    '/training-plans',
    requireRole('hr', 'finance', 'institution', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(ListQuery, req.query);
      const p = req.principal!;
      let rows = db('training_plans').select('*');
      if (p.role === 'hr') rows = rows.where('district', p.district);
      else if (p.role === 'finance' && p.district) rows = rows.where('district', p.district);
      else if (p.role === 'institution') rows = rows.where('department_id', p.institutionId);
      if (q.district) rows = rows.where('district', q.district);
      if (q.status === 'accepted') rows = rows.whereNotNull('hr_ack_at').whereNotNull('finance_ack_at');
      if (q.status === 'filed') rows = rows.where((w) => w.whereNull('hr_ack_at').orWhereNull('finance_ack_at'));
      if (q.cursor) {
        const after = Buffer.from(q.cursor, 'base64url').toString();
        if (!PLAN_ID_PATTERN.test(after)) throw new Problem(400, 'INVALID_CURSOR');
        rows = rows.where('plan_id', '>', after);
      }
      const page: PlanRow[] = await rows.orderBy('plan_id').limit(q.limit + 1);
      const shown = page.slice(0, q.limit);
      const listed = await listedTrainees(db, shown.map((x) => x.plan_id));
      const items = shown.map((plan) => planViewOf(plan, listed.get(plan.plan_id) ?? 0));
      res.json({ items, nextCursor: page.length > q.limit ? Buffer.from(page[q.limit - 1]!.plan_id).toString('base64url') : null });
    }),
  );

  r.get(
    '/training-plans/:planId',
    requireRole('hr', 'finance', 'institution', 'operator'),
    asyncRoute(async (req, res) => {
      res.json(await planView(db, await visiblePlan(req)));
    }),
  );

  // R4.6: an industry department evaluates its own training — the plan against what its lists became.
  r.get(
    '/training-plans/:planId/performance',
    requireRole('hr', 'finance', 'institution', 'operator'),
    asyncRoute(async (req, res) => {
      const plan = await visiblePlan(req);
      res.json({ plan: await planView(db, plan), performance: await planPerformance(db, plan) });
    }),
  );

  // ---- acknowledge receipt (HR of the district; finance of the district or city-wide) ------------
  r.post(
    '/training-plans/:planId/acknowledge',
    requireRole('hr', 'finance'),
    asyncRoute(async (req, res) => {
      const plan = await visiblePlan(req);
      const p = req.principal!;
      const [by, at] = p.role === 'hr' ? ['hr_ack_by', 'hr_ack_at'] : ['finance_ack_by', 'finance_ack_at'];
      // The first acknowledgement stands; a repeat answers the same and changes nothing.
      const updated = await db('training_plans')
        .where({ plan_id: plan.plan_id })
        .whereNull(at)
        .update({ [by]: p.id, [at]: new Date(now()) })
        .returning('plan_id');
      if (updated.length) logger.info({ planId: plan.plan_id, role: p.role, by: p.id }, 'training plan acknowledged');
      res.status(200).json(await planView(db, await db('training_plans').where({ plan_id: plan.plan_id }).first()));
    }),
  );

  return r;
}
