/**
 * Routes of the settlement area (authenticated; mounted under /v1): the subsidy catalogue (R3.11),
 * the certificate registry (R3.13), budgets and their queue (R3.12), settlement batches and
 * reconciliation (R3.13), bank-account corrections, clawbacks (R4.5) and statistics (R5.1).
 */
import express, { Router, type Request } from 'express';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { Knex } from 'knex';
import { z } from 'zod';
import { readBatchFile, releaseWaiting, type FileFormat } from '../../activities/settlement-activities';
import { FUNDING_SOURCES } from '../../activities/settlement-decision';
import { isValidResidentId, maskTail } from '../../lib/pii';
import { localDate } from '../../policy/calendar';
import { isShaoxingDistrict } from '../../policy/districts';
import { settlementBatchWorkflowId, type SettlementBatchResult } from '../../workflows/settlement/contract';
import { VOUCHER_NO_PATTERN, VOUCHER_TASK_QUEUE } from '../../workflows/voucher/contract';
import { requireRole, type Principal } from '../auth';
import { seesInFull } from '../disclosure';
import { asyncRoute, isLocalDate, keysetPage, PAGE_PARAMS, parse, type ApiDeps } from '../http';
import { Problem } from '../problem';
import { FUNNEL_COUNTS, fundPerformance } from '../performance';
import { recordStrike } from '../strikes';
import { policyInForceFromDb } from '../voucher-input';
import { catalogueView } from './public';

const DATE = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD').refine(isLocalDate, 'not a calendar date');
const DISTRICT = z.string().regex(/^[0-9]{6}$/).refine((d) => isShaoxingDistrict(d), 'not a Shaoxing district');
const FUNDING = z.enum(FUNDING_SOURCES);

const CatalogueBody = z
  .object({
    occupationCode: z.string().min(1).max(32),
    level: z.string().min(1).max(8),
    trainingKind: z.enum(['certificate', 'project', 'special']),
    amountFen: z.number().int().positive().max(100_000_000),
    fundingSource: FUNDING,
    validFrom: DATE,
    validTo: DATE.nullable().optional(),
  })
  .strict()
  .refine((b) => !b.validTo || b.validTo >= b.validFrom, { message: 'validTo before validFrom', path: ['validTo'] });

const CertificateBody = z
  .object({
    certificateNo: z.string().min(1).max(64),
    idNumber: z.string().refine(isValidResidentId, 'not a valid resident ID number'),
    occupationCode: z.string().min(1).max(32),
    level: z.string().min(1).max(8),
    issuedOn: DATE,
  })
  .strict();

const TopUpBody = z.object({ amountFen: z.number().int().positive().max(1_000_000_000_000) }).strict();
const QueueQuery = z.object({ district: DISTRICT.optional(), ...PAGE_PARAMS }).strict();
const BatchListQuery = z.object({ district: DISTRICT.optional(), status: z.enum(['prepared', 'approved', 'sent', 'reconciled']).optional(), ...PAGE_PARAMS }).strict();
const AccountBody = z.object({ account: z.string().regex(/^[0-9]{8,32}$/, '8–32 digits') }).strict();
const ClawbackBody = z.object({ reason: z.string().min(1).max(1000) }).strict();
const StatsQuery = z.object({ from: DATE, to: DATE, format: z.enum(['json', 'csv']).default('json') }).strict();
const FundPerformanceQuery = z
  .object({
    year: z.coerce.number().int().min(2000).max(2100),
    district: z.string().refine(isShaoxingDistrict, 'not a Shaoxing district').optional(),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .strict();

const ymd = (d: Date | string | null | undefined): string | null => {
  if (d === null || d === undefined) return null;
  if (typeof d === 'string') return d.slice(0, 10);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};
const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
const pgCode = (e: unknown) => (e as { code?: string })?.code;

/** A district-scoped principal may act on its district only; city-wide finance (no district) on all. */
function inScope(p: Principal, district: string): boolean {
  if (p.role === 'operator') return true;
  if (p.role === 'finance') return p.district === null || p.district === district;
  return p.district === district;
}

/**
 * The one district `p` is confined to, or null for city-wide (operators, finance without a district).
 * An HR principal always has one: `authenticate` refuses one without.
 */
function ownDistrict(p: Principal): string | null {
  return p.role !== 'operator' && p.district ? p.district : null;
}

/**
 * A list of district rows as `p` may see it: a district principal (HR, finance with a district) sees its
 * district only; a `district` filter only narrows that, never widens it.
 */
function scopedRows<Q extends Knex.QueryBuilder>(rows: Q, column: string, p: Principal, district?: string): Q {
  const own = ownDistrict(p);
  if (own) rows = rows.where(column, own) as Q;
  return district ? (rows.where(column, district) as Q) : rows;
}

function batchView(b: Record<string, unknown>) {
  return {
    id: b.id as string,
    district: b.district as string,
    fundingSource: b.funding_source as string,
    paymentRoute: b.payment_route as string,
    date: ymd(b.batch_date as Date),
    status: b.status as string,
    totalFen: Number(b.total_fen),
    lineCount: Number(b.line_count),
    approvedBy: (b.approved_by as string) ?? null,
    approvedAt: iso(b.approved_at as Date),
    sentBy: (b.sent_by as string) ?? null,
    sentAt: iso(b.sent_at as Date),
    reconciledAt: iso(b.reconciled_at as Date),
  };
}

export function settlementRoutes(deps: ApiDeps): Router {
  const { db, client, pii, logger } = deps;
  const taskQueue = deps.taskQueue ?? VOUCHER_TASK_QUEUE;
  const now = deps.now ?? Date.now;
  const r = Router();

  // ---- R3.11: the subsidy catalogue, kept by HR ------------------------------------------------
  r.post(
    '/catalogue',
    // R3.11: HR and finance publish the subsidy catalogue (a city-wide register).
    requireRole('hr', 'finance'),
    asyncRoute(async (req, res) => {
      const b = parse(CatalogueBody, req.body);
      try {
        const [row] = await db('subsidy_catalogue')
          .insert({
            occupation_code: b.occupationCode,
            level: b.level,
            training_kind: b.trainingKind,
            amount_fen: b.amountFen,
            funding_source: b.fundingSource,
            valid_from: b.validFrom,
            valid_to: b.validTo ?? null,
            created_by: req.principal!.id,
          })
          .returning('*');
        res.status(201).json(catalogueView(row));
      } catch (e) {
        // The exclusion constraint: another entry for the same key covers part of these dates.
        if (pgCode(e) === '23P01') {
          throw new Problem(409, 'CATALOGUE_OVERLAP', 'an entry for this occupation, level and kind already covers part of these dates', 'R3.11');
        }
        throw e;
      }
    }),
  );

  // ---- R3.13: the certificate registry the general voucher is compared against ----------------
  r.post(
    '/certificates',
    requireRole('assessor'),
    asyncRoute(async (req, res) => {
      const b = parse(CertificateBody, req.body);
      const personRef = pii.personRef(b.idNumber);
      const inserted = await db('certificates')
        .insert({ certificate_no: b.certificateNo, person_ref: personRef, occupation_code: b.occupationCode, level: b.level, issued_on: b.issuedOn, issued_by: req.principal!.id })
        .onConflict('certificate_no')
        .ignore()
        .returning('certificate_no');
      if (inserted.length === 0) throw new Problem(409, 'CERTIFICATE_EXISTS', `certificate ${b.certificateNo} is already registered`, 'R3.13');
      res.status(201).json({ certificateNo: b.certificateNo, personRef, occupationCode: b.occupationCode, level: b.level, issuedOn: b.issuedOn });
    }),
  );

  // ---- R3.12: budgets, their queue, top-ups -----------------------------------------------------
  r.post(
    '/budgets/:district/:fundingSource/:year/top-up',
    requireRole('finance'),
    asyncRoute(async (req, res) => {
      const body = parse(TopUpBody, req.body);
      const key = parse(
        z.object({ district: DISTRICT, fundingSource: FUNDING, year: z.coerce.number().int().min(2000).max(2100) }).strict(),
        { district: req.params.district, fundingSource: req.params.fundingSource, year: req.params.year },
      );
      if (!inScope(req.principal!, key.district)) throw new Problem(404, 'BUDGET_NOT_FOUND');
      const out = await db.transaction(async (trx) => {
        await trx('budgets')
          .insert({ district: key.district, funding_source: key.fundingSource, year: key.year, total_fen: body.amountFen, reserved_fen: 0 })
          .onConflict(['district', 'funding_source', 'year'])
          .merge({ total_fen: trx.raw('budgets.total_fen + ?', [body.amountFen]), updated_at: trx.fn.now() });
        const released = await releaseWaiting(trx, { district: key.district, fundingSource: key.fundingSource, year: key.year });
        await trx('budget_top_ups').insert({ district: key.district, funding_source: key.fundingSource, year: key.year, amount_fen: body.amountFen, principal_id: req.principal!.id, released: JSON.stringify(released) });
        const b = await trx('budgets').where({ district: key.district, funding_source: key.fundingSource, year: key.year }).first();
        return { released, b };
      });
      logger.info({ district: key.district, fundingSource: key.fundingSource, year: key.year, released: out.released.length }, 'budget topped up');
      res.json({
        district: key.district,
        fundingSource: key.fundingSource,
        year: key.year,
        totalFen: Number(out.b.total_fen),
        reservedFen: Number(out.b.reserved_fen),
        leftFen: Number(out.b.total_fen) - Number(out.b.reserved_fen),
        released: out.released,
      });
    }),
  );

  r.get(
    '/budgets',
    requireRole('finance', 'hr', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(QueueQuery, req.query);
      const p = req.principal!;
      const page = await keysetPage(scopedRows(db('budgets').select('*'), 'district', p, q.district), ['district', 'funding_source', 'year'], q);
      const items = page.rows.map((b) => ({
        district: b.district,
        fundingSource: b.funding_source,
        year: b.year,
        totalFen: Number(b.total_fen),
        reservedFen: Number(b.reserved_fen),
        leftFen: Number(b.total_fen) - Number(b.reserved_fen),
      }));
      res.json({ items, nextCursor: page.nextCursor });
    }),
  );

  r.get(
    '/budget-queue',
    requireRole('finance', 'hr', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(QueueQuery, req.query);
      const p = req.principal!;
      const waiting = scopedRows(db('disbursements').where({ status: 'waiting_budget' }), 'payer_district', p, q.district);
      // Positions count the whole queue in order, whichever page is shown.
      const ordered = db.from(waiting.clone().select('*', db.raw('row_number() over (order by created_at, id) as position')).as('queue'));
      const page = await keysetPage(ordered, ['created_at', 'id'], q);
      const total = await waiting.clone().sum<{ n: string | null }[]>({ n: 'amount_fen' });
      const items = page.rows.map((d) => ({
        position: Number(d.position),
        voucherNo: d.voucher_no,
        district: d.payer_district,
        fundingSource: d.funding_source,
        year: d.budget_year,
        amountFen: Number(d.amount_fen),
        payeeType: d.payee_type,
        since: iso(d.created_at),
      }));
      res.json({ items, totalFen: Number(total[0]?.n ?? 0), nextCursor: page.nextCursor });
    }),
  );

  // ---- R3.13: settlement batches ---------------------------------------------------------------
  r.post(
    '/settlement-batches/run',
    requireRole('finance'),
    asyncRoute(async (req, res) => {
      parse(z.object({}).strict(), req.body ?? {});
      const policy = await policyInForceFromDb(db, now());
      const date = localDate(now(), policy.timeZone);
      // R3.13: finance of a district batches its own district's disbursements only (a run of its own,
      // per date); city-wide finance runs the whole city, as the daily schedule does.
      const district = req.principal!.district ?? undefined;
      const handle = await client.workflow.start('settlementBatchWorkflow', {
        workflowId: settlementBatchWorkflowId(date, district),
        taskQueue,
        args: [{ date, district }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      });
      // A district's run returns its own district's batches only; the city's run, every district's.
      const result = (await handle.result()) as SettlementBatchResult;
      res.json({ date: result.date, batchIds: result.batchIds, created: result.created });
    }),
  );

  async function batchOr404(req: Request): Promise<Record<string, unknown>> {
    const b = await db('settlement_batches').where({ id: String(req.params.id) }).first();
    if (!b || !inScope(req.principal!, b.district)) throw new Problem(404, 'BATCH_NOT_FOUND');
    return b;
  }

  r.get(
    '/settlement-batches',
    requireRole('finance', 'hr', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(BatchListQuery, req.query);
      const p = req.principal!;
      let rows = scopedRows(db('settlement_batches').select('*'), 'district', p, q.district);
      if (q.status) rows = rows.where('status', q.status);
      // Keyed on the day as text: a `date` read back as a JS Date would shift with the process's zone.
      const byDay = db.from(rows.clone().select(db.raw('batch_date::text as batch_day')).as('b'));
      const page = await keysetPage(byDay, ['batch_day', 'id'], q, 'desc');
      res.json({ items: page.rows.map(batchView), nextCursor: page.nextCursor });
    }),
  );

  r.get(
    '/settlement-batches/:id',
    requireRole('finance', 'hr', 'operator'),
    asyncRoute(async (req, res) => {
      const b = await batchOr404(req);
      const lines = await db('batch_lines').where({ batch_id: b.id }).orderBy('line_no');
      const files = await db('batch_files').where({ batch_id: b.id }).select('format', 'variant', 'sha256', 'size').orderBy(['variant', 'format']);
      res.json({
        ...batchView(b),
        files: files.map((f) => ({ format: f.format, variant: f.variant, sha256: f.sha256, size: Number(f.size) })),
        lines: lines.map((l) => ({
          line: l.line_no,
          voucherNo: l.voucher_no,
          payeeType: l.payee_type,
          payeeId: l.payee_id_masked,
          amountFen: Number(l.amount_fen),
          result: l.result ?? null,
          reason: l.reason ?? null,
          confirmedAt: iso(l.confirmed_at),
        })),
      });
    }),
  );

  /** HR of the batch's district stamps it (prepared → approved), then sends it to finance (approved → sent). */
  const transition = (from: string, to: 'approved' | 'sent') =>
    asyncRoute(async (req, res) => {
      parse(z.object({}).strict(), req.body ?? {});
      const b = await batchOr404(req);
      const stamp = to === 'approved' ? { approved_by: req.principal!.id, approved_at: new Date(now()).toISOString() } : { sent_by: req.principal!.id, sent_at: new Date(now()).toISOString() };
      const n = await db('settlement_batches').where({ id: b.id, status: from }).update({ status: to, ...stamp });
      if (n === 0) throw new Problem(409, 'BATCH_STATE', `batch is ${b.status}, not ${from}`, 'R3.13');
      res.json(batchView(await db('settlement_batches').where({ id: b.id }).first()));
    });
  r.post('/settlement-batches/:id/approve', requireRole('hr'), transition('prepared', 'approved'));
  r.post('/settlement-batches/:id/send', requireRole('hr'), transition('approved', 'sent'));

  r.get(
    '/settlement-batches/:id/:file',
    requireRole('finance', 'hr'),
    asyncRoute(async (req, res) => {
      const file = String(req.params.file);
      if (file !== 'table.csv' && file !== 'table.xlsx') throw new Problem(404, 'NOT_FOUND', `no file ${file}`);
      const b = await batchOr404(req);
      const format = file.slice(6) as FileFormat;
      // Accounts in full for finance only; HR sees them masked.
      const variant = seesInFull(req.principal!, 'account') ? 'full' : 'masked';
      const buf = await readBatchFile(db, pii, b.id as string, format, variant);
      if (!buf) throw new Problem(404, 'BATCH_FILE_NOT_READY');
      const meta = await db('batch_files').where({ batch_id: b.id, format, variant }).first('sha256');
      res.setHeader('x-content-sha256', meta.sha256);
      res.setHeader('content-disposition', `attachment; filename="${b.id}.${format}"`);
      res.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet').send(buf);
    }),
  );

  // Finance uploads the bank's results: CSV `line,result,reason`, result paid | failed.
  r.post(
    '/settlement-batches/:id/reconciliation',
    requireRole('finance'),
    express.text({ type: ['text/csv', 'text/plain'], limit: '2mb' }),
    asyncRoute(async (req, res) => {
      if (typeof req.body !== 'string') throw new Problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the reconciliation as text/csv');
      let records: Record<string, string>[];
      try {
        records = parseCsv(req.body, { columns: true, skip_empty_lines: true, trim: true });
      } catch (e) {
        throw new Problem(400, 'INVALID_CSV', (e as Error).message);
      }
      const Line = z.object({ line: z.coerce.number().int().positive(), result: z.enum(['paid', 'failed']), reason: z.string().max(500).optional().default('') }).strict();
      const lines = records.map((x, i) => {
        try {
          return parse(Line, x);
        } catch (e) {
          throw new Problem(400, 'INVALID_CSV', `row ${i + 2}: ${(e as Problem).detail}`);
        }
      });
      if (lines.length === 0) throw new Problem(400, 'INVALID_CSV', 'no lines');
      if (new Set(lines.map((l) => l.line)).size !== lines.length) throw new Problem(409, 'LINE_ALREADY_CONFIRMED', 'a line appears twice in the upload', 'R3.13');
      const failedWithoutReason = lines.find((l) => l.result === 'failed' && !l.reason);
      if (failedWithoutReason) throw new Problem(400, 'INVALID_CSV', `line ${failedWithoutReason.line}: a failed line needs a reason`);
      const b = await batchOr404(req);
      const out = await db.transaction(async (trx) => {
        const batch = await trx('settlement_batches').where({ id: b.id }).forUpdate().first();
        if (batch.status !== 'sent') throw new Problem(409, 'BATCH_STATE', `batch is ${batch.status}, not sent`, 'R3.13');
        const at = new Date(now()).toISOString();
        for (const l of lines) {
          const row = await trx('batch_lines').where({ batch_id: b.id, line_no: l.line }).forUpdate().first();
          if (!row) throw new Problem(422, 'LINE_NOT_IN_BATCH', `batch ${b.id} has no line ${l.line}`, 'R3.13');
          if (row.result) throw new Problem(409, 'LINE_ALREADY_CONFIRMED', `line ${l.line} is already ${row.result}`, 'R3.13');
          await trx('batch_lines').where({ batch_id: b.id, line_no: l.line }).update({ result: l.result, reason: l.reason || null, confirmed_by: req.principal!.id, confirmed_at: at });
          await trx('disbursements')
            .where({ id: row.disbursement_id })
            .update(l.result === 'paid' ? { status: 'paid', paid_at: at } : { status: 'failed' });
        }
        const open = await trx('batch_lines').where({ batch_id: b.id }).whereNull('result').count<{ n: string }[]>({ n: '*' });
        if (Number(open[0]!.n) === 0) await trx('settlement_batches').where({ id: b.id }).update({ status: 'reconciled', reconciled_at: at });
        const counts = await trx('batch_lines').where({ batch_id: b.id }).select('result').count<{ result: string | null; n: string }[]>({ n: '*' }).groupBy('result');
        return counts;
      });
      const by = (k: string | null) => Number(out.find((c) => c.result === k)?.n ?? 0);
      res.json({ batchId: b.id, confirmed: lines.length, paid: by('paid'), failed: by('failed'), open: by(null), status: (await db('settlement_batches').where({ id: b.id }).first('status')).status });
    }),
  );

  // ---- bank-account corrections (HR of one of the person's districts), audited ------------------
  r.put(
    '/persons/:personRef/bank-account',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(AccountBody, req.body);
      const personRef = String(req.params.personRef);
      if (!/^P[0-9a-f]{40}$/.test(personRef)) throw new Problem(404, 'PERSON_NOT_FOUND');
      const district = req.principal!.district;
      const out = await db.transaction(async (trx) => {
        const p = await trx('persons').where({ person_ref: personRef }).forUpdate().first();
        const districts = p ? [p.ui_district, p.employment_district, p.household_district, p.residence_district, p.unemployment_reg_district] : [];
        if (!p || !districts.includes(district)) throw new Problem(404, 'PERSON_NOT_FOUND');
        const oldMasked = p.bank_account_enc ? maskTail(pii.decrypt(p.bank_account_enc)) : null;
        const newMasked = maskTail(body.account);
        await trx('persons').where({ person_ref: personRef }).update({ bank_account_enc: pii.encrypt(body.account) });
        const [change] = await trx('account_changes')
          .insert({ person_ref: personRef, old_masked: oldMasked, new_masked: newMasked, principal_id: req.principal!.id, changed_at: new Date(now()).toISOString() })
          .returning('*');
        // R3.13: failed payments go back to the queue of the next batch, to the corrected account.
        const requeued = await trx('disbursements')
          .where({ payee_type: 'person', payee_ref: personRef, status: 'failed' })
          .update({ status: 'approved', batch_id: null })
          .returning('voucher_no');
        return { change, requeued: requeued.map((x: { voucher_no: string }) => x.voucher_no) };
      });
      logger.info({ personRef, by: req.principal!.id, requeued: out.requeued.length }, 'bank account corrected');
      res.json({ personRef, oldAccount: out.change.old_masked, newAccount: out.change.new_masked, changedBy: out.change.principal_id, changedAt: iso(out.change.changed_at), requeued: out.requeued });
    }),
  );

  // ---- institution bank accounts (R3.9, R3.13): the institution itself or HR of any district -----
  // Registration and approval of institutions are HR acts of any Shaoxing district (R4.1: approval
  // holds city-wide), so any district's HR may register or correct the account; the institution may
  // for itself. Another institution's ID answers 404 exactly like a missing one. Audited like persons.
  r.put(
    '/institutions/:id/bank-account',
    requireRole('hr', 'institution'),
    asyncRoute(async (req, res) => {
      const p = req.principal!;
      const id = String(req.params.id);
      if (p.role === 'institution' && p.institutionId !== id) throw new Problem(404, 'INSTITUTION_NOT_FOUND');
      const body = parse(AccountBody, req.body);
      const out = await db.transaction(async (trx) => {
        const inst = await trx('institutions').where({ id }).forUpdate().first();
        if (!inst) throw new Problem(404, 'INSTITUTION_NOT_FOUND');
        const oldMasked = inst.bank_account_enc ? maskTail(pii.decrypt(inst.bank_account_enc)) : null;
        const newMasked = maskTail(body.account);
        await trx('institutions').where({ id }).update({ bank_account_enc: pii.encrypt(body.account) });
        const [change] = await trx('account_changes')
          .insert({ institution_id: id, old_masked: oldMasked, new_masked: newMasked, principal_id: p.id, changed_at: new Date(now()).toISOString() })
          .returning('*');
        // R3.13: failed payments go back to the queue of the next batch, to the corrected account.
        const requeued = await trx('disbursements')
          .where({ payee_type: 'institution', payee_ref: id, status: 'failed' })
          .update({ status: 'approved', batch_id: null })
          .returning('voucher_no');
        return { change, requeued: requeued.map((x: { voucher_no: string }) => x.voucher_no).sort() };
      });
      logger.info({ institutionId: id, by: p.id, requeued: out.requeued.length }, 'institution bank account changed');
      res.json({ institutionId: id, oldAccount: out.change.old_masked, newAccount: out.change.new_masked, changedBy: out.change.principal_id, changedAt: iso(out.change.changed_at), requeued: out.requeued });
    }),
  );

  // ---- R4.5: clawback of subsidies obtained by fake training ------------------------------------
  async function disbursementOr404(req: Request, trx: Knex = db) {
    const voucherNo = String(req.params.voucherNo);
    if (!VOUCHER_NO_PATTERN.test(voucherNo)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
    const d = await trx('disbursements').where({ voucher_no: voucherNo }).first();
    if (!d || !inScope(req.principal!, d.payer_district)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
    return d;
  }

  const clawbackView = (c: Record<string, unknown>) => ({
    voucherNo: c.voucher_no as string,
    disbursementId: Number(c.disbursement_id),
    district: c.district as string,
    amountFen: Number(c.amount_fen),
    outstandingFen: c.recovered_at ? 0 : -Number(c.amount_fen),
    reason: c.reason as string,
    institutionId: (c.institution_id as string) ?? null,
    strikeId: (c.strike_id as string) ?? null,
    createdBy: c.principal_id as string,
    createdAt: iso(c.created_at as Date),
    recoveredAt: iso(c.recovered_at as Date),
  });

  r.post(
    '/vouchers/:voucherNo/clawback',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(ClawbackBody, req.body);
      const d = await disbursementOr404(req);
      const v = await db('vouchers').where({ voucher_no: d.voucher_no }).first();
      if (!v || v.status !== 'settled') throw new Problem(409, 'VOUCHER_NOT_SETTLED', `status is ${v?.status ?? 'unknown'}`, 'R4.5');
      const enrolment = await db('enrolments').where({ voucher_no: d.voucher_no }).first();
      const institutionId: string | null = enrolment?.institution_id ?? v.institution_id ?? null;
      const strikeId = `clawback-${d.voucher_no}`;
      const at = new Date(now()).toISOString();
      const created = await db.transaction(async (trx) => {
        const ins = await trx('clawbacks')
          .insert({
            voucher_no: d.voucher_no,
            disbursement_id: d.id,
            district: d.payer_district,
            funding_source: d.funding_source,
            amount_fen: -Number(d.amount_fen),
            reason: body.reason,
            institution_id: institutionId,
            strike_id: institutionId ? strikeId : null,
            principal_id: req.principal!.id,
            created_at: at,
          })
          .onConflict('voucher_no')
          .ignore()
          .returning('*');
        if (ins.length === 0) throw new Problem(409, 'CLAWBACK_EXISTS', `voucher ${d.voucher_no} is already clawed back`, 'R4.5');
        if (institutionId) {
          // R4.4/R4.5: the institution is held liable: one quality strike, evidence kept in the register,
          // counted by its workflow in this same transaction (Temporal unreachable: no clawback either).
          await recordStrike(trx, client, taskQueue, {
            id: strikeId,
            institutionId,
            kind: 'quality',
            evidence: `R4.5 clawback of ${d.voucher_no}: ${body.reason}`,
            district: req.principal!.district ?? null,
            principalId: req.principal!.id,
            at,
          });
        }
        return ins[0];
      });
      logger.info({ voucherNo: d.voucher_no, by: req.principal!.id }, 'clawback recorded');
      res.status(201).json(clawbackView(created));
    }),
  );

  r.post(
    '/vouchers/:voucherNo/clawback/recovered',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      parse(z.object({}).strict(), req.body ?? {});
      const d = await disbursementOr404(req);
      const n = await db('clawbacks').where({ voucher_no: d.voucher_no }).whereNull('recovered_at').update({ recovered_at: new Date(now()).toISOString(), recovered_by: req.principal!.id });
      const c = await db('clawbacks').where({ voucher_no: d.voucher_no }).first();
      if (!c) throw new Problem(404, 'CLAWBACK_NOT_FOUND');
      if (n === 0) throw new Problem(409, 'CLAWBACK_ALREADY_RECOVERED', undefined, 'R4.5');
      res.json(clawbackView(c));
    }),
  );

  r.get(
    '/clawbacks',
    requireRole('hr', 'finance', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(QueueQuery, req.query);
      const p = req.principal!;
      const rows = scopedRows(db('clawbacks').select('*'), 'district', p, q.district);
      const page = await keysetPage(rows, ['id'], q);
      // What is still to recover, over every clawback in scope (amounts are stored negative).
      const open = await rows.clone().clearSelect().whereNull('recovered_at').sum<{ n: string | null }[]>({ n: 'amount_fen' });
      res.json({ items: page.rows.map(clawbackView), outstandingFen: -Number(open[0]?.n ?? 0), nextCursor: page.nextCursor });
    }),
  );

  // ---- R5.1: statistics, counted toward the settling (paying) district --------------------------
  r.get(
    '/statistics',
    requireRole('hr', 'finance', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(StatsQuery, req.query);
      if (q.to < q.from) throw new Problem(400, 'INVALID_REQUEST', 'to before from');
      const p = req.principal!;
      const stats = await statistics(db, q.from, q.to, ownDistrict(p));
      if (q.format === 'csv') {
        const rows: string[][] = [['section', 'district', 'funding_source', 'voucher_type', 'occupation', 'month', 'group', 'year', 'count', 'amount_fen', 'total_fen', 'reserved_fen', 'left_fen']];
        for (const t of stats.trainees) rows.push(['trainees', t.district, '', '', '', '', '', '', String(t.trainees), '', '', '', '']);
        for (const t of stats.trainees) rows.push(['certificates', t.district, '', '', '', '', '', '', String(t.certificates), '', '', '', '']);
        for (const s of stats.subsidies) rows.push(['subsidies', s.district, s.fundingSource, s.voucherType, s.occupationCode ?? '', s.month, '', '', String(s.count), String(s.amountFen), '', '', '']);
        for (const g of stats.priorityGroups) rows.push(['priority_groups', '', '', '', '', '', g.group, '', String(g.count), '', '', '', '']);
        for (const b of stats.budgets) rows.push(['budgets', b.district, b.fundingSource, '', '', '', '', String(b.year), '', '', String(b.totalFen), String(b.usedFen), String(b.leftFen)]);
        res.type('text/csv; charset=utf-8').send(stringify(rows, { record_delimiter: '\r\n' }));
        return;
      }
      res.json(stats);
    }),
  );

  // R4.6: performance evaluation of the funds: the voucher funnel of a year's issue and what the
  // subsidies decided in the year cost against the budget. District principals see their district.
  r.get(
    '/fund-performance',
    requireRole('hr', 'finance', 'operator'),
    asyncRoute(async (req, res) => {
      const q = parse(FundPerformanceQuery, req.query);
      const p = req.principal!;
      const own = ownDistrict(p);
      // A filter narrows the caller's scope and never widens it: another district reads as empty.
      const report =
        own && q.district && q.district !== own ? { year: q.year, district: q.district, issuance: [], funds: [] } : await fundPerformance(db, q.year, q.district ?? own);
      if (q.format === 'csv') {
        // For finance's spreadsheets: one figure per row, so both sections share one set of columns.
        const rows: string[][] = [['section', 'district', 'funding_source', 'figure', 'value']];
        const cell = (v: number | null) => (v === null ? '' : String(v));
        for (const x of report.issuance) {
          for (const k of FUNNEL_COUNTS) rows.push(['issuance', x.district, '', k, cell(x[k])]);
          for (const k of ['activationPct', 'usePct', 'completionPct'] as const) rows.push(['issuance', x.district, '', k, cell(x.rates[k])]);
        }
        for (const f of report.funds) {
          for (const k of ['subsidised', 'withCertificate', 'disbursedFen', 'clawedBackFen', 'netFen', 'netFenPerTrainee', 'budgetFen', 'reservedFen', 'utilisationPct'] as const) {
            rows.push(['funds', f.district, f.fundingSource, k, cell(f[k])]);
          }
        }
        res
          .type('text/csv; charset=utf-8')
          .set('Content-Disposition', `attachment; filename="fund-performance-${q.year}${report.district ? `-${report.district}` : ''}.csv"`)
          .send(stringify(rows, { record_delimiter: '\r\n' }));
        return;
      }
      res.json(report);
    }),
  );

  return r;
}

/** R5.1 figures for [from, to] (local dates, Asia/Shanghai), optionally for one paying district. */
export async function statistics(db: Knex, from: string, to: string, district: string | null) {
  const zone = 'Asia/Shanghai';
  const inRange = `(sd.decided_at at time zone '${zone}')::date between ?::date and ?::date`;
  const trainees = await db('subsidy_decisions as sd')
    .join('vouchers as v', 'v.voucher_no', 'sd.voucher_no')
    .where('sd.outcome', 'approved')
    .whereRaw(inRange, [from, to])
    .modify((qb) => (district ? qb.where('sd.payer_district', district) : qb))
    .groupBy('sd.payer_district')
    .orderBy('sd.payer_district')
    .select('sd.payer_district as district')
    .count<{ district: string; trainees: string; certificates: string }[]>({ trainees: '*' })
    .select(db.raw(`count(*) filter (where v.type = 'general' and sd.inputs->>'certificateNoClaimed' is not null) as certificates`));
  const subsidies = await db('disbursements as d')
    .join('subsidy_decisions as sd', 'sd.voucher_no', 'd.voucher_no')
    .join('vouchers as v', 'v.voucher_no', 'd.voucher_no')
    .whereRaw(inRange, [from, to])
    .modify((qb) => (district ? qb.where('d.payer_district', district) : qb))
    .select(
      'd.payer_district as district',
      'd.funding_source',
      'v.type as voucher_type',
      'v.occupation_code',
      db.raw(`to_char(sd.decided_at at time zone '${zone}', 'YYYY-MM') as month`),
      db.raw('count(*) as n'),
      db.raw('sum(d.amount_fen)::text as amount'),
    )
    .groupByRaw('1, 2, 3, 4, 5')
    .orderByRaw('1, 2, 3, 4, 5');
  const groups = await db('vouchers as v')
    .join('subsidy_decisions as sd', 'sd.voucher_no', 'v.voucher_no')
    .where('sd.outcome', 'approved')
    .whereRaw(inRange, [from, to])
    .modify((qb) => (district ? qb.where('sd.payer_district', district) : qb))
    .select(db.raw('unnest(v.priority_groups) as "group"'))
    .then((rows: { group: string }[]) => {
      const m = new Map<string, number>();
      for (const r of rows) m.set(r.group, (m.get(r.group) ?? 0) + 1);
      return [...m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([group, count]) => ({ group, count }));
    });
  const years: [number, number] = [Number(from.slice(0, 4)), Number(to.slice(0, 4))];
  const budgets = await db('budgets')
    .whereBetween('year', years)
    .modify((qb) => (district ? qb.where('district', district) : qb))
    .orderBy(['district', 'funding_source', 'year']);
  return {
    from,
    to,
    district,
    trainees: trainees.map((t) => ({ district: t.district, trainees: Number(t.trainees), certificates: Number(t.certificates) })),
    subsidies: subsidies.map((s: Record<string, string>) => ({
      district: s.district!,
      fundingSource: s.funding_source!,
      voucherType: s.voucher_type!,
      occupationCode: s.occupation_code ?? null,
      month: s.month!,
      count: Number(s.n),
      amountFen: Number(s.amount),
    })),
    priorityGroups: groups,
    budgets: budgets.map((b: Record<string, unknown>) => ({
      district: b.district as string,
      fundingSource: b.funding_source as string,
      year: b.year as number,
      totalFen: Number(b.total_fen),
      usedFen: Number(b.reserved_fen),
      leftFen: Number(b.total_fen) - Number(b.reserved_fen),
    })),
  };
}
