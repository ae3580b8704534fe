/**
 * R4.6: performance evaluation of the training funds — what the money bought. Two readings, both from
 * the read model and the money ledger (no workflow is asked):
 *
 * - the voucher funnel of a cohort (issued → obtained → activated → used → completed → settled, and how
 *   many expired, were revoked or were refused a subsidy), with its rates;
 * - the money of the subsidies decided in a period (gross disbursed, clawed back, net), against the
 *   budget, per subsidised trainee.
 *
 * Percentages have one decimal; a per-trainee amount is integer fen, rounded half up. A rate whose
 * denominator is zero is null, not 0.
 */
import type { Knex } from 'knex';
import { VoucherStatus } from '../workflows/voucher/contract';

const ZONE = 'Asia/Shanghai';

export interface VoucherFunnel {
  issued: number;
  obtained: number;
  activated: number;
  enrolled: number;
  completed: number;
  settled: number;
  refused: number;
  expired: number;
  revoked: number;
  /** activated ÷ issued, enrolled ÷ issued, settled (subsidy paid) ÷ enrolled. */
  rates: { activationPct: number | null; usePct: number | null; completionPct: number | null };
}

export interface Money {
  subsidised: number;
  /** Of the subsidised trainees, how many general-voucher holders had a certificate recorded (R3.8). */
  withCertificate: number;
  disbursedFen: number;
  /** Negative: the clawbacks of those disbursements (R4.5). */
  clawedBackFen: number;
  netFen: number;
  netFenPerTrainee: number | null;
}

export const pct = (part: number, whole: number): number | null => (whole > 0 ? Math.round((1000 * part) / whole) / 10 : null);
const perHead = (fen: number, n: number): number | null => (n > 0 ? Math.round(fen / n) : null);

const FUNNEL_COLUMNS = `
  count(*) AS issued,
  count(v.obtained_at) AS obtained,
  count(v.activated_at) AS activated,
  count(v.enrolled_at) AS enrolled,
  count(v.completed_at) AS completed,
  count(*) FILTER (WHERE v.status = '${VoucherStatus.Settled}') AS settled,
  count(*) FILTER (WHERE v.status = '${VoucherStatus.Rejected}') AS refused,
  count(*) FILTER (WHERE v.status = '${VoucherStatus.Expired}') AS expired,
  count(*) FILTER (WHERE v.status = '${VoucherStatus.Revoked}') AS revoked`;

/** The funnel's counts, in order (FUNNEL_COLUMNS names them; the CSV export lists them). */
export const FUNNEL_COUNTS = ['issued', 'obtained', 'activated', 'enrolled', 'completed', 'settled', 'refused', 'expired', 'revoked'] as const;

type FunnelRow = Record<(typeof FUNNEL_COUNTS)[number], string | number>;

function funnelOf(r: FunnelRow | undefined): VoucherFunnel {
  const f = Object.fromEntries(FUNNEL_COUNTS.map((k) => [k, Number(r?.[k] ?? 0)])) as Record<(typeof FUNNEL_COUNTS)[number], number>;
  return { ...f, rates: { activationPct: pct(f.activated, f.issued), usePct: pct(f.enrolled, f.issued), completionPct: pct(f.settled, f.enrolled) } };
}

const MONEY_COLUMNS = `
  count(*) AS subsidised,
  count(*) FILTER (WHERE v.type = 'general' AND sd.inputs->>'certificateNoClaimed' IS NOT NULL) AS with_certificate,
  coalesce(sum(d.amount_fen), 0)::text AS disbursed,
  coalesce(sum(c.amount_fen), 0)::text AS clawed_back`;

type MoneyRow = { subsidised: string; with_certificate: string; disbursed: string; clawed_back: string };

function moneyOf(r: MoneyRow | undefined): Money {
  const subsidised = Number(r?.subsidised ?? 0);
  const disbursedFen = Number(r?.disbursed ?? 0);
  const clawedBackFen = Number(r?.clawed_back ?? 0);
  const netFen = disbursedFen + clawedBackFen;
  return { subsidised, withCertificate: Number(r?.with_certificate ?? 0), disbursedFen, clawedBackFen, netFen, netFenPerTrainee: perHead(netFen, subsidised) };
}

const moneyFrom = (k: Knex) =>
  k('disbursements as d')
    .join('subsidy_decisions as sd', 'sd.voucher_no', 'd.voucher_no')
    .leftJoin('vouchers as v', 'v.voucher_no', 'd.voucher_no')
    .leftJoin('clawbacks as c', 'c.disbursement_id', 'd.id');

/**
 * The city's (or one district's) funds for a year: the funnel of the vouchers each district issued in
 * the year (local year of issue), and per paying district and funding source the money of the
 * subsidies decided in the year against that year's budget.
 */
export async function fundPerformance(db: Knex, year: number, district: string | null) {
  const cohort = await db('vouchers as v')
    .whereRaw(`extract(year from v.issued_at at time zone '${ZONE}') = ?`, [year])
    .modify((q) => (district ? q.where('v.issuer_district', district) : q))
    .select('v.issuer_district as district', db.raw(FUNNEL_COLUMNS))
    .groupBy('v.issuer_district')
    .orderBy('v.issuer_district');
  const money: (MoneyRow & { district: string; funding_source: string })[] = await moneyFrom(db)
    .whereRaw(`extract(year from sd.decided_at at time zone '${ZONE}') = ?`, [year])
    .modify((q) => (district ? q.where('d.payer_district', district) : q))
    .select('d.payer_district as district', 'd.funding_source', db.raw(MONEY_COLUMNS))
    .groupBy('d.payer_district', 'd.funding_source');
  const budgets: { district: string; funding_source: string; total_fen: string; reserved_fen: string }[] = await db('budgets')
    .where({ year })
    .modify((q) => (district ? q.where('district', district) : q));

  // Every (district, funding source) with money decided or a budget, in a stable order.
  const keys = new Map<string, { district: string; fundingSource: string }>();
  for (const x of [...money, ...budgets]) keys.set(`${x.district}|${x.funding_source}`, { district: x.district, fundingSource: x.funding_source });
  const funds = [...keys.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, k]) => {
      const m = moneyOf(money.find((x) => `${x.district}|${x.funding_source}` === key));
      const b = budgets.find((x) => `${x.district}|${x.funding_source}` === key);
      const budgetFen = b ? Number(b.total_fen) : null;
      return { ...k, ...m, budgetFen, reservedFen: b ? Number(b.reserved_fen) : null, utilisationPct: budgetFen === null ? null : pct(m.netFen, budgetFen) };
    });
  return {
    year,
    district,
    issuance: cohort.map((r: FunnelRow & { district: string }) => ({ district: r.district, ...funnelOf(r) })),
    funds,
  };
}

/** R2.6 + R4.6: an industry department's plan against what its lists became (any time). */
export async function planPerformance(db: Knex, plan: { plan_id: string; trainees: number; subsidy_standard_fen: string | number }) {
  const vouchersOfPlan = db('issuance_rows as ir').join('trainee_lists as tl', 'tl.list_id', 'ir.list_id').where('tl.plan_id', plan.plan_id).whereNotNull('ir.voucher_no').where('ir.outcome', 'issued').select('ir.voucher_no');
  const funnel = await db('vouchers as v').whereIn('v.voucher_no', vouchersOfPlan.clone()).select(db.raw(FUNNEL_COLUMNS)).first();
  const money = await moneyFrom(db).whereIn('d.voucher_no', vouchersOfPlan.clone()).select(db.raw(MONEY_COLUMNS)).first();
  const plannedSubsidyFen = plan.trainees * Number(plan.subsidy_standard_fen);
  const m = moneyOf(money);
  return {
    planned: { trainees: plan.trainees, subsidyFen: plannedSubsidyFen },
    vouchers: funnelOf(funnel),
    money: m,
    againstPlan: { traineesSubsidisedPct: pct(m.subsidised, plan.trainees), subsidySpentPct: pct(m.netFen, plannedSubsidyFen) },
  };
}
