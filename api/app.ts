/**
 * The HTTP API: thin over Temporal (voucher lifecycle) and PostgreSQL (registries, read models).
 * Every request is authenticated and scoped; bad input gets a problem+json 4xx and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { z } from 'zod';
import {
  VOUCHER_NO_PATTERN,
  TERMINAL_STATUSES,
  VOUCHER_TASK_QUEUE,
  VoucherStatus,
  voucherWorkflowId,
  type VoucherSnapshot,
} from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate, revokeSignal, stateQuery } from '../workflows/voucher/messages';
import { authenticate, ownInstitutionId, requireRole, type Principal } from './auth';
import { codecRoutes } from './codec-server';
import { contractValidator, docsRoutes } from './openapi';
import { idempotency } from './idempotency';
import { specialBodies } from './bodies';
import { requestContext } from '../lib/request-id';
import { auditLog, createMetrics, perPrincipalLimit, readiness, requestLogs, securityHeaders } from './ops';
import { asyncRoute, hasNul, parse, type ApiDeps } from './http';
import { Problem, sendProblem } from './problem';
import { RETRY_AFTER_SECONDS, unavailableProblem } from './unavailable';
import { exclusive, freshReads } from './single-flight';
import { refusalFrom } from './refusal';
import { view } from './voucher-view';
import { issuanceRoutes } from './routes/issuance';
import { planRoutes } from './routes/plans';
import { publicRoutes, statsPageRoutes } from './routes/public';
import { settlementRoutes } from './routes/settlement';
import { supervisionRoutes } from './routes/supervision';
import { trainingRoutes } from './routes/training';
import { runUpdate, updateIdFor } from './updates';
import { named } from '../db/named-statements';

const ActivateBody = z.object({ channel: z.enum(['zlb', 'zwfw', 'alipay', 'wechat', 'e-sscard']).optional() }).strict();
const EnrolBody = z
  .object({ classId: z.string().min(1).max(64), review: z.object({ passed: z.boolean(), note: z.string().max(500).optional() }).strict() })
  .strict();
const CheckInBody = z.object({ sessionId: z.string().min(1).max(64), verifiedMinutes: z.number().int().positive().max(24 * 60).optional() }).strict();
const CompleteBody = z.object({ assessmentPassed: z.boolean(), certificateNo: z.string().min(1).max(64).optional() }).strict();
const RevokeBody = z.object({ reason: z.string().min(1).max(500) }).strict();

/** May this principal see the voucher at all? (Out of scope looks exactly like absent: 404.) */
function canSee(p: Principal, s: VoucherSnapshot): boolean {
  switch (p.role) {
    case 'operator':
      return true;
    case 'hr':
      return p.district === s.issuerDistrict;
    case 'finance':
      return p.district === null || p.district === s.issuerDistrict || p.district === s.settlement?.payerDistrict;
    case 'holder':
      return p.personRef === s.personRef;
    case 'institution':
      return !!s.classPlan && s.classPlan.institutionId === p.institutionId;
    default:
      return false;
  }
}

export type { ApiDeps };

export function createApp(deps: ApiDeps) {
  const { db, client, pii, logger } = deps;
  const taskQueue = deps.taskQueue ?? VOUCHER_TASK_QUEUE;
  const now = deps.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders());
  const metrics = createMetrics();
  app.use((req, res, next) => {
    const id = (req.get('x-request-id') || '').slice(0, 64) || randomUUID();
    res.setHeader('x-request-id', id);
    (req as Request & { id: string }).id = id;
    // Carried into Temporal headers by the client interceptor (lib/request-id.ts).
    requestContext.run({ requestId: id }, next);
  });
  app.use(requestLogs(logger));
  app.use(metrics.middleware);
  // Bodies are capped at 256 kB, except trainee lists (thousands of rows, R2.5), which parse their own up to 50 MB.
  const json = express.json({ limit: '256kb' });
  app.use((req, res, next) => (req.method === 'POST' && req.path === '/v1/trainee-lists' ? next() : json(req, res, next)));
  // PostgreSQL text cannot hold NUL: refuse it at the door rather than fail deep inside (found by fuzzing).
  app.use((req, _res, next) => {
    if (hasNul(req.body) || hasNul(req.query) || req.path.includes('\u0000') || decodeURIComponent(req.path.replace(/%(?![0-9a-fA-F]{2})/g, '%25')).includes('\u0000')) {
      next(new Problem(400, 'INVALID_REQUEST', 'NUL characters are not allowed'));
    } else next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', readiness(db, client));
  app.use(docsRoutes());
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  if (deps.codecKeys) {
    app.use('/codec', codecRoutes({ db, codecKeys: deps.codecKeys, uiOrigin: deps.temporalUiOrigin ?? 'http://127.0.0.1:8233', principalCache: deps.principalCache }));
  }
  // Unauthenticated, read-only publications (e.g. the subsidy catalogue, R3.11).
  // The contract (openapi/openapi.yaml) is enforced on these too; an undocumented route answers 404.
  const contract = contractValidator(deps.validateResponses ?? process.env.NODE_ENV === 'test');
  app.use('/v1/public', contract, publicRoutes(deps));

  const v1 = express.Router();
  v1.use(auditLog(db, logger, { flushMs: deps.auditFlushMs })); // first, so refused authentications are recorded too
  v1.use(authenticate(db, deps.principalCache));
  v1.use(perPrincipalLimit(deps.rateLimitPerMinute ?? 600));
  v1.use(specialBodies()); // trainee lists and reconciliation files: read before the contract checks them
  v1.use(contract);
  v1.use(idempotency(db));
  v1.use(issuanceRoutes(deps));
  v1.use(planRoutes(deps));
  v1.use(trainingRoutes(deps));
  v1.use(settlementRoutes(deps));
  v1.use(supervisionRoutes(deps));

  /** Storm protection (api/single-flight.ts): one Update per voucher at a time in this process, and
   * concurrent reads of one voucher sharing a query that started after they arrived. */
  const oneAtATime = exclusive();
  const sharedRead = freshReads();

  async function snapshot(voucherNo: string): Promise<VoucherSnapshot> {
    if (!VOUCHER_NO_PATTERN.test(voucherNo)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
    try {
      // A shared answer: every caller only reads it (views are built as new objects).
      return await sharedRead(voucherNo, () => client.workflow.getHandle(voucherWorkflowId(voucherNo)).query(stateQuery));
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new Problem(404, 'VOUCHER_NOT_FOUND');
      throw e;
    }
  }

  async function visibleSnapshot(req: Request, voucherNo: string): Promise<VoucherSnapshot> {
    const s = await snapshot(voucherNo);
    if (!canSee(req.principal!, s)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
    return s;
  }

  /** A voucher whose workflow has ended takes no more actions. */
  function assertOpen(s: VoucherSnapshot): void {
    if ((TERMINAL_STATUSES as readonly string[]).includes(s.status)) {
      throw new Problem(409, 'VOUCHER_CLOSED', `status is ${s.status}`);
    }
  }

  // ---- issue (district HR): POST /vouchers lives in routes/issuance.ts (R2.1, eligibility R1.2, R2.3, R2.4)

  // ---- list (from the read model, never from Temporal visibility) --------------------------
  const ListQuery = z
    .object({
      status: z.enum(Object.values(VoucherStatus) as [string, ...string[]]).optional(),
      type: z.enum(['general', 'directed']).optional(),
      district: z.string().regex(/^[0-9]{6}$/).optional(),
      institutionId: z.string().max(64).optional(),
      personRef: z.string().regex(/^P[0-9a-f]{40}$/).optional(),
      issuedFrom: z.string().datetime({ offset: true }).optional(),
      issuedTo: z.string().datetime({ offset: true }).optional(),
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: z.string().max(200).optional(),
    })
    .strict();
  v1.get(
    '/vouchers',
    asyncRoute(async (req, res) => {
      const q = parse(ListQuery, req.query);
      const p = req.principal!;
      let rows = db('vouchers').select('snapshot', 'voucher_no');
      // Scope first: a filter can only narrow what the principal may see.
      if (p.role === 'hr') rows = rows.where('issuer_district', p.district);
      else if (p.role === 'finance' && p.district) rows = rows.where('issuer_district', p.district);
      else if (p.role === 'holder') rows = rows.where('person_ref', p.personRef);
      else if (p.role === 'institution') rows = rows.where('institution_id', p.institutionId);
      else if (p.role !== 'operator' && p.role !== 'finance') throw new Problem(403, 'FORBIDDEN_ROLE', 'this role lists no vouchers');
      if (q.status) rows = rows.where('status', q.status);
      if (q.type) rows = rows.where('type', q.type);
      if (q.district) rows = rows.where('issuer_district', q.district);
      if (q.institutionId) rows = rows.where('institution_id', q.institutionId);
      if (q.personRef) rows = rows.where('person_ref', q.personRef);
      const instant = (v: string, name: string) => {
        const t = Date.parse(v);
        if (Number.isNaN(t) || !/([+-](0\d|1[0-4]):[0-5]\d|Z)$/.test(v)) throw new Problem(400, 'INVALID_REQUEST', `${name}: not a valid instant`);
        return new Date(t).toISOString();
      };
      if (q.issuedFrom) rows = rows.where('issued_at', '>=', instant(q.issuedFrom, 'issuedFrom'));
      if (q.issuedTo) rows = rows.where('issued_at', '<', instant(q.issuedTo, 'issuedTo'));
      if (q.cursor) {
        const after = Buffer.from(q.cursor, 'base64url').toString();
        if (!VOUCHER_NO_PATTERN.test(after)) throw new Problem(400, 'INVALID_CURSOR');
        rows = rows.where('voucher_no', '>', after);
      }
      const page = await rows.orderBy('voucher_no').limit(q.limit + 1);
      const items = page.slice(0, q.limit).map((r: { snapshot: VoucherSnapshot }) => view(r.snapshot, p));
      const next = page.length > q.limit ? Buffer.from(page[q.limit - 1].voucher_no).toString('base64url') : null;
      res.json({ items, nextCursor: next });
    }),
  );

  v1.get(
    '/vouchers/:no',
    asyncRoute(async (req, res) => {
      res.json(view(await visibleSnapshot(req, String(req.params.no)), req.principal!));
    }),
  );

  // ---- activate (holder) -------------------------------------------------------------------
  v1.post(
    '/vouchers/:no/activate',
    requireRole('holder'),
    asyncRoute(async (req, res) => {
      const body = parse(ActivateBody, req.body ?? {});
      assertOpen(await visibleSnapshot(req, String(req.params.no)));
      try {
        const no = String(req.params.no);
        const s = await oneAtATime(no, () => runUpdate(client.workflow.getHandle(voucherWorkflowId(no)), activateUpdate, body, updateIdFor('activate', req)));
        res.json(view(s, req.principal!));
      } catch (e) {
        throw refusalFrom(e) ?? e;
      }
    }),
  );

  // ---- enrol (institution): the voucher's use ---------------------------------------------
  v1.post(
    '/vouchers/:no/enrol',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(EnrolBody, req.body);
      const institutionId = ownInstitutionId(req);
      assertOpen(await snapshot(String(req.params.no))); // 404 for unknown vouchers; the holder hands the number to the institution
      try {
        const no = String(req.params.no);
        const s = await oneAtATime(no, () =>
          runUpdate(client.workflow.getHandle(voucherWorkflowId(no)), enrolUpdate, { classId: body.classId, institutionId, review: body.review }, updateIdFor('enrol', req)),
        );
        res.json(view(s, req.principal!));
      } catch (e) {
        throw refusalFrom(e) ?? e;
      }
    }),
  );

  // ---- check-in (institution reports a verified attendance) --------------------------------
  v1.post(
    '/vouchers/:no/check-ins',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(CheckInBody, req.body);
      const no = String(req.params.no);
      if (!VOUCHER_NO_PATTERN.test(no)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
      const signal = async (verifiedMinutes: number) => {
        try {
          await client.workflow.getHandle(voucherWorkflowId(no)).signal(checkInSignal, { sessionId: body.sessionId, verifiedMinutes, at: now() });
        } catch (e) {
          // Not delivered: take the report back so a retry counts it (nothing half-happens).
          await db('attendance_reports').where({ voucher_no: no, session_id: body.sessionId }).del();
          throw e;
        }
      };
      // The common case in one statement (docs/PERFORMANCE.md figure 3): the read model says the voucher
      // is in training in this institution's class with this session not yet verified, and the report is
      // recorded (R3.10: one per voucher and session, held by the primary key). Anything else — unknown,
      // out of scope, another status, an unknown session, a duplicate — falls through to the exact checks below.
      // A named statement (db/named-statements.ts): each pooled connection parses and plans it once, not on
      // every check-in (PostgreSQL's CPU per check-in, docs/PERFORMANCE.md figure 3).
      const fast = await named(
        'check_in_fast_path',
        db.raw<{ rows: { verified_minutes: number }[] }>(
          `WITH v AS (
             SELECT voucher_no, jsonb_path_query_first(snapshot, '$.sessions[*] \\? (@.sessionId == $sid)', jsonb_build_object('sid', ?::text)) AS session
               FROM vouchers WHERE voucher_no = ? AND status = ? AND institution_id = ?)
           INSERT INTO attendance_reports (voucher_no, session_id, institution_id, verified_minutes, principal_id, reported_at)
           SELECT v.voucher_no, ?, ?, LEAST(COALESCE(?::int, (v.session->>'minutes')::int), (v.session->>'minutes')::int), ?, ?
             FROM v WHERE v.session IS NOT NULL AND (v.session->>'verifiedMinutes')::int = 0
           ON CONFLICT (voucher_no, session_id) DO NOTHING
           RETURNING verified_minutes`,
          [
            body.sessionId,
            no,
            VoucherStatus.InTraining,
            req.principal!.institutionId,
            body.sessionId,
            req.principal!.institutionId,
            body.verifiedMinutes ?? null,
            req.principal!.id,
            new Date(now()),
          ],
        ),
      );
      if (fast.rows.length === 1) {
        await signal(fast.rows[0]!.verified_minutes);
        res.status(202).json({ voucherNo: no, sessionId: body.sessionId, counted: true, duplicate: false });
        return;
      }
      // The read model, written by the workflow before enrol returns, answers scope, status and
      // plan without a workflow query (the query cost 6–13× a bare signal at p99 under 200 clients,
      // docs/PERFORMANCE.md figure 3). Anything but "in training" is confirmed with the workflow itself,
      // so refusals are exact.
      const row = await db('vouchers').where({ voucher_no: no }).first('snapshot');
      let s = row?.snapshot as VoucherSnapshot | undefined;
      if (!s || s.status !== VoucherStatus.InTraining) s = await snapshot(no);
      if (!canSee(req.principal!, s)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
      if (s.status !== VoucherStatus.InTraining) throw new Problem(409, 'VOUCHER_NOT_IN_TRAINING', `status is ${s.status}`, 'R3.10');
      const session = s.sessions.find((x) => x.sessionId === body.sessionId);
      if (!session) throw new Problem(422, 'SESSION_NOT_IN_PLAN', `no session ${body.sessionId} in the teaching plan`, 'R3.10');
      const verifiedMinutes = Math.min(body.verifiedMinutes ?? session.minutes, session.minutes);
      // R3.10: one report per voucher and session, held by the primary key; only the first is signalled
      // (a session already verified by the holder's own QR check-in counts as a duplicate too).
      const inserted =
        session.verifiedMinutes > 0
          ? []
          : await db('attendance_reports')
              .insert({ voucher_no: no, session_id: body.sessionId, institution_id: req.principal!.institutionId, verified_minutes: verifiedMinutes, principal_id: req.principal!.id, reported_at: new Date(now()) })
              .onConflict(['voucher_no', 'session_id'])
              .ignore()
              .returning('session_id');
      const duplicate = inserted.length === 0;
      if (!duplicate) await signal(verifiedMinutes);
      res.status(202).json({ voucherNo: no, sessionId: body.sessionId, counted: !duplicate, duplicate });
    }),
  );

  // ---- complete (institution) --------------------------------------------------------------
  v1.post(
    '/vouchers/:no/complete',
    requireRole('institution'),
    asyncRoute(async (req, res) => {
      const body = parse(CompleteBody, req.body);
      const s = await visibleSnapshot(req, String(req.params.no));
      if (s.status !== VoucherStatus.InTraining) throw new Problem(409, 'VOUCHER_NOT_IN_TRAINING', `status is ${s.status}`);
      if (s.type === 'general' && !body.certificateNo) throw new Problem(422, 'CERTIFICATE_REQUIRED', 'a general voucher settles on a certificate', 'R3.8');
      await client.workflow.getHandle(voucherWorkflowId(s.voucherNo)).signal(completeSignal, body);
      res.status(202).json({ voucherNo: s.voucherNo, accepted: true });
    }),
  );

  // ---- revoke (HR of the issuing district) -------------------------------------------------
  v1.post(
    '/vouchers/:no/revoke',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(RevokeBody, req.body);
      const s = await visibleSnapshot(req, String(req.params.no));
      assertOpen(s);
      if (s.status === VoucherStatus.Completed) throw new Problem(409, 'VOUCHER_CLOSED', 'training completed; settlement under way');
      await client.workflow.getHandle(voucherWorkflowId(s.voucherNo)).signal(revokeSignal, { reason: body.reason, by: req.principal!.id });
      res.status(202).json({ voucherNo: s.voucherNo, accepted: true });
    }),
  );

  app.use('/v1', v1);
  // The statistics page for HR and finance (R5.1): static HTML that calls /v1/statistics with the user's key.
  app.use(statsPageRoutes());

  app.use((req, _res, next) => next(new Problem(404, 'NOT_FOUND', `no route ${req.method} ${req.path}`)));
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const instance = (req as Request & { id?: string }).id;
    if (err instanceof Problem) return sendProblem(res, err, instance);
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.parse.failed') return sendProblem(res, new Problem(400, 'MALFORMED_JSON', 'request body is not valid JSON'), instance);
    if (e?.type === 'entity.too.large') return sendProblem(res, new Problem(413, 'BODY_TOO_LARGE'), instance);
    if (typeof e?.status === 'number' && Array.isArray((err as { errors?: unknown }).errors) && e.status < 500) {
      // express-openapi-validator: the request does not match the contract.
      const errors = (err as { errors: { path?: string; message: string }[] }).errors;
      const code = e.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : e.status === 405 ? 'METHOD_NOT_ALLOWED' : e.status === 404 ? 'NOT_FOUND' : 'INVALID_REQUEST';
      return sendProblem(res, new Problem(e.status, code, errors.map((x) => `${x.path ?? ''} ${x.message}`.trim()).join('; '), null, { errors: errors.map((x) => ({ path: x.path ?? '', message: x.message })) }), instance);
    }
    if (err instanceof WorkflowExecutionAlreadyStartedError) return sendProblem(res, new Problem(409, 'VOUCHER_EXISTS'), instance);
    if (err instanceof WorkflowUpdateFailedError || /already completed/i.test(String(e?.message))) {
      return sendProblem(res, new Problem(409, 'VOUCHER_CLOSED', 'the voucher workflow has ended'), instance);
    }
    // PostgreSQL or Temporal down: 503 + Retry-After, never a hang or a 500 (api/unavailable.ts).
    const down = unavailableProblem(err);
    if (down) {
      logger.warn({ err, requestId: instance, code: down.code }, 'dependency unavailable');
      res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
      return sendProblem(res, down, instance);
    }
    logger.error({ err, requestId: instance }, 'unhandled error');
    return sendProblem(res, new Problem(500, 'INTERNAL', 'internal error'), instance);
  });
  return app;
}
