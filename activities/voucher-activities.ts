/**
 * Activities of the voucher workflow. Dependencies are injected (`createActivities({ db })`); every
 * activity that writes is idempotent, backed by a unique key, so a retry never writes twice.
 */
import { Context, log as activityLog } from '@temporalio/activity';
import type { Db } from '../db/connection';
import { named } from '../db/named-statements';
import type { Pii } from '../lib/pii';
import { localDate, localYear } from '../policy/calendar';
import type { ClassPlan, RefusalCode, SettlementResult, VoucherSnapshot, VoucherType } from '../workflows/voucher/contract';
import { Refusal } from '../workflows/voucher/contract';
import { decideSubsidy, type DecisionInputs, type FundingSource } from './settlement-decision';

export interface ActivityDeps {
  db: Db;
  /** Clock for timestamps the database keeps (decisions use the workflow's time passed in). */
  now?: () => number;
  /** Personal-data keys: settlement renders disbursement tables with names and accounts. */
  pii?: Pii;
}

export type EnrolmentCheck =
  | { ok: true; plan: ClassPlan }
  | { ok: false; code: RefusalCode; rule?: string; detail?: string };

export interface EnrolInput {
  voucherNo: string;
  voucherType: VoucherType;
  personRef: string;
  occupationCode?: string;
  classId: string;
  institutionId: string;
  review: { passed: boolean; note?: string };
  at: number;
}

export interface SettleInput {
  voucherNo: string;
  type: VoucherType;
  issuerDistrict: string;
  personRef: string;
  classPlan: ClassPlan;
  attendedMinutes: number;
  totalMinutes: number;
  assessmentPassed: boolean;
  certificateNo?: string;
  completedAt: number;
  checkInRateThresholdPct: number;
  policyVersion: string;
  timeZone: string;
}

/** Activity log line (carries workflow, activity and request IDs); silent outside an activity. */
function info(message: string, attrs: Record<string, unknown>): void {
  try {
    Context.current();
  } catch {
    return;
  }
  activityLog.info(message, attrs);
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** The read model's row of a voucher state (`vouchers`). */
export function readModelRow(db: Db, s: VoucherSnapshot) {
  return {
    voucher_no: s.voucherNo,
    revision: s.revision,
    type: s.type,
    status: s.status,
    issuer_district: s.issuerDistrict,
    person_ref: s.personRef,
    occupation_code: s.classPlan?.occupationCode ?? s.occupationCode ?? null,
    institution_id: s.classPlan?.institutionId ?? null,
    class_id: s.classPlan?.classId ?? null,
    policy_version: s.policyVersion,
    priority_groups: s.priorityGroups,
    issued_at: iso(s.issuedAt),
    claim_deadline: iso(s.claimDeadline),
    claimed_at: iso(s.claimedAt),
    claim_channel: s.claimChannel ?? null,
    obtained_at: iso(s.obtainedAt),
    activation_deadline: iso(s.activationDeadline),
    activated_at: iso(s.activatedAt),
    use_deadline: iso(s.useDeadline),
    enrolled_at: iso(s.enrolledAt),
    completed_at: iso(s.completedAt),
    ended_at: iso(s.endedAt),
    end_reason: s.endReason ?? null,
    attended_minutes: s.attendedMinutes,
    total_minutes: s.totalMinutes,
    check_in_rate: s.checkInRate,
    snapshot: JSON.stringify(s),
    updated_at: db.fn.now(),
  };
}

export function createActivities({ db }: ActivityDeps) {
  return {
    /** Upserts the read model; an older revision never overwrites a newer one. */
    async projectVoucher(s: VoucherSnapshot): Promise<void> {
      // The hottest write of a lifecycle (one per publication): prepared once per connection.
      await named(
        'project_voucher',
        db('vouchers').insert(readModelRow(db, s)).onConflict('voucher_no').merge().where('vouchers.revision', '<', s.revision),
      );
    },

    /**
     * R2.7: records the channel and time a holder obtained the voucher. Idempotent by voucher number:
     * a retry (or a second claim) keeps the first record.
     */
    async recordClaim(i: { voucherNo: string; personRef: string; channel: string; claimedAt: number }): Promise<void> {
      await db('voucher_claims')
        .insert({ voucher_no: i.voucherNo, person_ref: i.personRef, channel: i.channel, claimed_at: new Date(i.claimedAt) })
        .onConflict('voucher_no')
        .ignore();
    },

    /**
     * R3.4: takes one of the person's `limit` activation slots for `year`. Idempotent: a voucher that
     * already holds a slot for the year gets it back. Concurrent callers race on the primary key; at
     * most `limit` vouchers win.
     */
    async takeActivationQuota(i: { personRef: string; year: number; voucherNo: string; limit: number }): Promise<{
      granted: boolean;
      slot?: number;
    }> {
      const mine = await db('activation_quota').where({ voucher_no: i.voucherNo, year: i.year }).first();
      if (mine) return { granted: true, slot: mine.slot };
      for (let slot = 1; slot <= i.limit; slot++) {
        const inserted = await db('activation_quota')
          .insert({ person_ref: i.personRef, year: i.year, slot, voucher_no: i.voucherNo })
          .onConflict(['person_ref', 'year', 'slot'])
          .ignore()
          .returning('slot');
        if (inserted.length > 0) {
          info('activation quota taken', { voucherNo: i.voucherNo, year: i.year, slot });
          return { granted: true, slot };
        }
        const holder = await db('activation_quota').where({ person_ref: i.personRef, year: i.year, slot }).first();
        if (holder?.voucher_no === i.voucherNo) return { granted: true, slot };
      }
      info('activation quota refused', { voucherNo: i.voucherNo, year: i.year });
      return { granted: false };
    },

    /** Checks an enrolment (R3.2, R3.7, R4.1, R4.2, R4.4) and records it, once per voucher. */
    async enrolInClass(i: EnrolInput): Promise<EnrolmentCheck> {
      return db.transaction(async (trx) => {
        const cls = await trx('classes').where({ id: i.classId }).first();
        if (!cls) return { ok: false, code: Refusal.ClassNotFound.code };
        if (cls.institution_id !== i.institutionId) return { ok: false, code: Refusal.InstitutionMismatch.code };
        const inst = await trx('institutions').where({ id: cls.institution_id }).forShare().first();
        if (!inst || inst.status === 'pending' || inst.status === 'suspended') {
          return { ok: false, code: Refusal.InstitutionNotApproved.code, rule: Refusal.InstitutionNotApproved.rule };
        }
        if (inst.status === 'rectification') {
          return { ok: false, code: Refusal.InstitutionUnderRectification.code, rule: Refusal.InstitutionUnderRectification.rule };
        }
        // R3.7 reading: a directed voucher's fixed occupation must equal the class's.
        if (i.voucherType === 'directed' && i.occupationCode && i.occupationCode !== cls.occupation_code) {
          return {
            ok: false,
            code: Refusal.OccupationMismatch.code,
            rule: Refusal.OccupationMismatch.rule,
            detail: `voucher ${i.occupationCode}, class ${cls.occupation_code}`,
          };
        }
        const sessions = await trx('class_sessions').where({ class_id: i.classId }).orderBy('starts_at');
        const plan: ClassPlan = {
          classId: cls.id,
          institutionId: cls.institution_id,
          occupationCode: cls.occupation_code,
          level: cls.level,
          trainingKind: cls.training_kind,
          sessions: sessions.map((x: { session_id: string; starts_at: Date; ends_at: Date; minutes: number }) => ({
            sessionId: x.session_id,
            startsAt: x.starts_at.getTime(),
            endsAt: x.ends_at.getTime(),
            minutes: x.minutes,
          })),
        };
        const existing = await trx('enrolments').where({ voucher_no: i.voucherNo }).first();
        if (existing) {
          // A retry of an enrolment already recorded: same class → same answer.
          if (existing.class_id === i.classId) return { ok: true, plan };
          return { ok: false, code: Refusal.NotActive.code, rule: Refusal.NotActive.rule, detail: 'already enrolled' };
        }
        // R4.2: once the class has started, only people on its roster may join.
        const firstStart = plan.sessions[0]?.startsAt;
        if (firstStart !== undefined && i.at >= firstStart) {
          const onRoster = await trx('class_roster').where({ class_id: i.classId, person_ref: i.personRef }).first();
          if (!onRoster) return { ok: false, code: Refusal.ClassStartedNotOnRoster.code, rule: Refusal.ClassStartedNotOnRoster.rule };
        }
        // Seats: lock the class row so concurrent enrolments count each other.
        await trx('classes').where({ id: i.classId }).forUpdate().first();
        const taken = await trx('enrolments').where({ class_id: i.classId }).count<{ n: string }[]>({ n: '*' });
        if (Number(taken[0]?.n ?? 0) >= cls.capacity) return { ok: false, code: Refusal.ClassFull.code };
        await trx('enrolments').insert({
          voucher_no: i.voucherNo,
          class_id: i.classId,
          institution_id: i.institutionId,
          person_ref: i.personRef,
          review_passed: i.review.passed,
          review_note: i.review.note ?? null,
          enrolled_at: new Date(i.at).toISOString(),
        });
        return { ok: true, plan };
      });
    },

    /** Writes a reminder to the notifications outbox; one row per (voucher, kind), never two. */
    async queueReminder(i: { voucherNo: string; personRef: string; kind: string; deadline: number }): Promise<void> {
      await db('notifications')
        .insert({ voucher_no: i.voucherNo, person_ref: i.personRef, kind: i.kind, deadline: new Date(i.deadline).toISOString() })
        .onConflict(['voucher_no', 'kind'])
        .ignore();
    },

    /**
     * Decides the subsidy (R3.8–R3.12) and writes the decision and, when approved, the one disbursement
     * row of this voucher, in one transaction. A retry returns the decision already stored.
     */
    async settleVoucher(i: SettleInput): Promise<SettlementResult> {
      return db.transaction(async (trx) => {
        const prior = await trx('subsidy_decisions').where({ voucher_no: i.voucherNo }).first();
        if (prior) return withBudgetStatus(trx, rowToResult(prior), i.voucherNo);
        const completedOn = localDate(i.completedAt, i.timeZone);
        // R3.11: the catalogue entry in force on the completion date.
        const entry = await trx('subsidy_catalogue')
          .where({ occupation_code: i.classPlan.occupationCode, level: i.classPlan.level, training_kind: i.classPlan.trainingKind })
          .andWhere('valid_from', '<=', completedOn)
          .andWhere((q) => q.whereNull('valid_to').orWhere('valid_to', '>=', completedOn))
          .orderBy('valid_from', 'desc')
          .first();
        const cert = i.certificateNo ? await trx('certificates').where({ certificate_no: i.certificateNo }).first() : null;
        const person = await trx('persons').where({ person_ref: i.personRef }).first();
        const inputs: DecisionInputs = {
          voucherType: i.type,
          issuerDistrict: i.issuerDistrict,
          personRef: i.personRef,
          classPlan: i.classPlan,
          attendedMinutes: i.attendedMinutes,
          totalMinutes: i.totalMinutes,
          assessmentPassed: i.assessmentPassed,
          checkInRateThresholdPct: i.checkInRateThresholdPct,
          decidedAt: i.completedAt,
          catalogueEntry: entry
            ? { id: Number(entry.id), amountFen: Number(entry.amount_fen), fundingSource: entry.funding_source as FundingSource }
            : null,
          certificate: cert
            ? { certificateNo: cert.certificate_no, personRef: cert.person_ref, occupationCode: cert.occupation_code, level: cert.level }
            : null,
          certificateNoClaimed: i.certificateNo,
          person: person
            ? {
                uiDistrict: person.ui_district,
                employmentDistrict: person.employment_district,
                householdDistrict: person.household_district,
                residenceDistrict: person.residence_district,
                unemploymentRegDistrict: person.unemployment_reg_district,
              }
            : null,
        };
        const result = decideSubsidy(inputs);
        const written = await trx('subsidy_decisions').insert({
          voucher_no: i.voucherNo,
          outcome: result.outcome,
          reason: result.reason ?? null,
          rule: result.rule ?? null,
          amount_fen: result.amountFen ?? null,
          payer_district: result.payerDistrict ?? null,
          payee_type: result.payeeType ?? null,
          payee_ref: result.payeeRef ?? null,
          funding_source: result.fundingSource ?? null,
          payment_route: result.paymentRoute ?? null,
          inputs: JSON.stringify({ ...inputs, policyVersion: i.policyVersion }),
          decided_at: new Date(result.decidedAt).toISOString(),
        }).onConflict('voucher_no').ignore().returning('voucher_no');
        if (written.length === 0) {
          // A concurrent attempt decided first; its decision stands.
          return withBudgetStatus(trx, rowToResult(await trx('subsidy_decisions').where({ voucher_no: i.voucherNo }).first()), i.voucherNo);
        }
        if (result.outcome === 'approved') {
          // R3.12: reserve the amount in the paying district's budget for the funding source and year,
          // atomically (the check constraint and the WHERE keep reserved ≤ total); short → the queue.
          const budgetYear = localYear(result.decidedAt, i.timeZone);
          const reserved = await trx.raw(
            `update budgets set reserved_fen = reserved_fen + ?, updated_at = now()
             where district = ? and funding_source = ? and year = ? and total_fen - reserved_fen >= ?`,
            [result.amountFen!, result.payerDistrict!, result.fundingSource!, budgetYear, result.amountFen!],
          );
          const ok = (reserved.rowCount ?? 0) > 0;
          await trx('disbursements')
            .insert({
              voucher_no: i.voucherNo,
              payer_district: result.payerDistrict,
              payee_type: result.payeeType,
              payee_ref: result.payeeRef,
              amount_fen: result.amountFen,
              funding_source: result.fundingSource,
              payment_route: result.paymentRoute,
              status: ok ? 'approved' : 'waiting_budget',
              budget_year: budgetYear,
              reserved_at: ok ? new Date().toISOString() : null,
            })
            .onConflict('voucher_no')
            .ignore();
        }
        info('settlement decided', { voucherNo: i.voucherNo, outcome: result.outcome, reason: result.reason ?? null });
        // Answer from the stored row, so the first call and every retry return the same value.
        return withBudgetStatus(trx, rowToResult(await trx('subsidy_decisions').where({ voucher_no: i.voucherNo }).first()), i.voucherNo);
      });
    },
  };
}

/** R3.12: an approved decision tells whether its money was reserved or waits in the budget queue. */
async function withBudgetStatus(trx: Db, r: SettlementResult, voucherNo: string): Promise<SettlementResult> {
  if (r.outcome !== 'approved') return r;
  const d = await trx('disbursements').where({ voucher_no: voucherNo }).first('reserved_at');
  if (!d) return r;
  return { ...r, budgetStatus: d.reserved_at ? 'reserved' : 'waiting_budget' };
}

function rowToResult(r: Record<string, unknown>): SettlementResult {
  const out: SettlementResult = { outcome: r.outcome as 'approved' | 'rejected', decidedAt: new Date(r.decided_at as string).getTime() };
  if (r.reason) out.reason = r.reason as string;
  if (r.rule) out.rule = r.rule as string;
  if (r.amount_fen !== null && r.amount_fen !== undefined) out.amountFen = Number(r.amount_fen);
  if (r.payer_district) out.payerDistrict = r.payer_district as string;
  if (r.payee_type) out.payeeType = r.payee_type as 'institution' | 'person';
  if (r.payee_ref) out.payeeRef = r.payee_ref as string;
  if (r.funding_source) out.fundingSource = r.funding_source as string;
  if (r.payment_route) out.paymentRoute = r.payment_route as string;
  return out;
}

export type VoucherActivities = ReturnType<typeof createActivities>;
