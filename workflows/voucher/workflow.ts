/**
 * One durable workflow per voucher: it waits for activation and use against the policy's deadlines,
 * counts check-ins, and settles when training ends.
 *
 *   issued ──claim──▶ claimed ──activate──▶ activated ──enrol──▶ in_training ──complete──▶ completed ──▶ settled | rejected
 *     │                  │                       │
 *     └────deadline──────┴──────▶ expired ◀──────┘          (revoke from any non-final state ─▶ revoked)
 *
 * Vouchers started before the claim step existed (input without `awaitsClaim`) were obtained at issue
 * and go issued ──activate──▶ activated directly; that path is kept unchanged so their histories replay.
 */
import {
  ApplicationFailure,
  condition,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { VoucherActivities } from '../../activities/voucher-activities';
import { addCalendarMonths, localYear, minusCalendarDays } from '../../policy/calendar';
import {
  CLAIM_CHANNELS,
  Refusal,
  TERMINAL_STATUSES,
  VoucherStatus,
  type ActivateRequest,
  type CheckInSignal,
  type ClaimRequest,
  type CompleteSignal,
  type EnrolRequest,
  type RevokeSignal,
  type VoucherInput,
  type VoucherSnapshot,
} from './contract';
import { initialSnapshot } from './initial-state';
import { activateUpdate, checkInSignal, claimUpdate, completeSignal, enrolUpdate, revokeSignal, stateQuery } from './messages';
import {
  ActivationDeadlineKey,
  CheckInRateKey,
  InstitutionIdKey,
  IssuerDistrictKey,
  OccupationCodeKey,
  UseDeadlineKey,
  VoucherStatusKey,
  VoucherTypeKey,
} from './search-attributes';

const acts = proxyActivities<VoucherActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});

/** Projections of state into the read model: cheap, frequent, retried forever. */
const projection = proxyLocalActivities<VoucherActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '30 seconds' },
});

function refuse(r: { code: string; rule?: string }, detail?: string): never {
  throw ApplicationFailure.create({
    type: r.code,
    message: detail ? `${r.code}: ${detail}` : r.code,
    nonRetryable: true,
    details: [{ code: r.code, rule: r.rule ?? null }],
  });
}

/** Equal as search-attribute values: dates by instant, lists element by element. */
function sameSearchValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

export async function voucherWorkflow(input: VoucherInput): Promise<VoucherSnapshot> {
  const { policy } = input;
  const zone = policy.timeZone;
  const s: VoucherSnapshot = initialSnapshot(input);
  /** An Update handler that is waiting on an activity; other state-changing messages wait for it. */
  let busy = false;
  let pendingCompletion: CompleteSignal | undefined;
  /** A revoke that arrived while an Update was mid-flight; applied as soon as it finishes. */
  let pendingRevoke: RevokeSignal | undefined;

  const isFinal = () => TERMINAL_STATUSES.includes(s.status);

  // The state at issue is already in the read model when the issuer wrote it (`projectedAtIssue`).
  let dirty = !input.projectedAtIssue;
  function touch(): void {
    s.revision += 1;
    dirty = true;
  }

  function searchAttributes(): SearchAttributeUpdatePair[] {
    const pairs: SearchAttributeUpdatePair[] = [
      { key: VoucherTypeKey, value: s.type },
      { key: VoucherStatusKey, value: s.status },
      { key: IssuerDistrictKey, value: s.issuerDistrict },
      { key: CheckInRateKey, value: s.checkInRate },
    ];
    if (s.activationDeadline !== undefined) pairs.splice(3, 0, { key: ActivationDeadlineKey, value: new Date(s.activationDeadline) });
    const occupation = s.classPlan?.occupationCode ?? s.occupationCode;
    if (occupation) pairs.push({ key: OccupationCodeKey, value: occupation });
    if (s.classPlan) pairs.push({ key: InstitutionIdKey, value: s.classPlan.institutionId });
    if (s.useDeadline !== undefined) pairs.push({ key: UseDeadlineKey, value: new Date(s.useDeadline) });
    return pairs;
  }

  /**
   * Upserts the search attributes whose value differs from what the voucher's visibility record holds
   * (the start's attributes plus every upsert so far, as `workflowInfo()` reflects them): a check-in
   * sends `CheckInRate` alone, a publication that changes none sends nothing. Vouchers started without
   * `searchAttributesOnChange` upsert the whole set on every publication, as their histories did.
   */
  function publishSearchAttributes(): void {
    if (!input.searchAttributesOnChange) {
      upsertSearchAttributes(searchAttributes());
      return;
    }
    const held = workflowInfo().typedSearchAttributes;
    // No rate before there is a class plan to measure it against.
    const pairs = searchAttributes().filter((p) => p.key !== CheckInRateKey || s.classPlan !== undefined);
    const changed = pairs.filter((p) => !sameSearchValue(held.get(p.key), p.value));
    if (changed.length > 0) upsertSearchAttributes(changed);
  }

  /** Publishes the current state: search attributes and the database read model. */
  async function publish(): Promise<void> {
    if (!dirty) return;
    dirty = false;
    publishSearchAttributes();
    await projection.projectVoucher({ ...s });
  }

  setHandler(stateQuery, () => ({ ...s }));

  /**
   * Runs an Update handler's body alone: while it waits on an activity, other state-changing Updates
   * are refused (their validators see `busy`) and a revoke waits; the revoke applies when it is done.
   */
  async function exclusively<T>(body: () => Promise<T>): Promise<T> {
    busy = true;
    try {
      return await body();
    } finally {
      busy = false;
      if (pendingRevoke) applyRevoke(pendingRevoke);
    }
  }

  // ---- claim through a channel (R2.7); the API has checked the holder's identity -------------
  setHandler(
    claimUpdate,
    (req: ClaimRequest) =>
      exclusively(async () => {
        const now = Date.now();
        await acts.recordClaim({ voucherNo: input.voucherNo, personRef: input.personRef, channel: req.channel, claimedAt: now });
        s.status = VoucherStatus.Claimed;
        s.claimedAt = now;
        s.claimChannel = req.channel;
        s.obtainedAt = now;
        // R3.1: the activation clock starts when the voucher is obtained.
        s.activationDeadline = addCalendarMonths(now, policy.activationWindowMonths, zone);
        touch();
        await publish();
        return { ...s };
      }),
    {
      validator: (req: ClaimRequest) => {
        if (busy) refuse(Refusal.EnrolmentInProgress);
        if (!input.awaitsClaim || s.status !== VoucherStatus.Issued) refuse(Refusal.NotAwaitingClaim, `status is ${s.status}`);
        if (s.claimDeadline !== undefined && Date.now() >= s.claimDeadline) refuse(Refusal.ClaimWindowClosed);
        if (!req || !(CLAIM_CHANNELS as readonly string[]).includes(req.channel)) throw new Error(`claim needs a channel: ${CLAIM_CHANNELS.join(', ')}`);
      },
    },
  );

  /** The status in which a voucher waits for activation: claimed, or issued for vouchers obtained at issue. */
  const awaitingActivation = input.awaitsClaim ? VoucherStatus.Claimed : VoucherStatus.Issued;

  // ---- activation (R3.1, R3.4) -------------------------------------------------------------
  setHandler(
    activateUpdate,
    (_req: ActivateRequest) =>
      exclusively(async () => {
        const now = Date.now();
        const year = localYear(now, zone);
        // R3.4: the per-person-per-year quota is held by the database (unique person + year + slot).
        const quota = await acts.takeActivationQuota({
          personRef: input.personRef,
          year,
          voucherNo: input.voucherNo,
          limit: policy.vouchersPerPersonPerYear,
        });
        if (!quota.granted) refuse(Refusal.QuotaUsed, `quota for ${year} held by another voucher`);
        s.status = VoucherStatus.Activated;
        s.activatedAt = now;
        s.activationYear = year;
        // R3.2: use within N calendar months of activation.
        s.useDeadline = addCalendarMonths(now, policy.useValidityMonths, zone);
        touch();
        await publish();
        return { ...s };
      }),
    {
      validator: (_req: ActivateRequest) => {
        if (busy) refuse(Refusal.EnrolmentInProgress);
        // R2.7: a voucher is activated only after the holder obtained it through a channel.
        if (input.awaitsClaim && s.status === VoucherStatus.Issued) refuse(Refusal.NotClaimed);
        if (s.status !== awaitingActivation) refuse(Refusal.NotIssued, `status is ${s.status}`);
        if (s.activationDeadline === undefined || Date.now() >= s.activationDeadline) refuse(Refusal.ActivationWindowClosed);
      },
    },
  );

  // ---- use = enrolment (R3.2, R3.6, R3.7) --------------------------------------------------
  setHandler(
    enrolUpdate,
    (req: EnrolRequest) =>
      exclusively(async () => {
        const check = await acts.enrolInClass({
          voucherNo: input.voucherNo,
          voucherType: input.type,
          personRef: input.personRef,
          occupationCode: input.occupationCode,
          classId: req.classId,
          institutionId: req.institutionId,
          review: req.review,
          at: Date.now(),
        });
        if (!check.ok) refuse({ code: check.code, rule: check.rule }, check.detail);
        s.status = VoucherStatus.InTraining;
        s.enrolledAt = Date.now();
        s.classPlan = check.plan;
        s.sessions = check.plan.sessions.map((x) => ({ sessionId: x.sessionId, minutes: x.minutes, verifiedMinutes: 0 }));
        s.totalMinutes = s.sessions.reduce((a, x) => a + x.minutes, 0);
        touch();
        await publish();
        return { ...s };
      }),
    {
      validator: (req: EnrolRequest) => {
        if (busy) refuse(Refusal.EnrolmentInProgress);
        if (s.status !== VoucherStatus.Activated) refuse(Refusal.NotActive, `status is ${s.status}`);
        if (s.useDeadline !== undefined && Date.now() >= s.useDeadline) refuse(Refusal.UseWindowClosed);
        if (!req || typeof req.classId !== 'string' || typeof req.institutionId !== 'string' || !req.review) {
          throw new Error('enrol needs classId, institutionId and review');
        }
        if (!req.review.passed) refuse(Refusal.ReviewFailed);
      },
    },
  );

  // ---- check-ins (R3.10): deduplicated by session id ---------------------------------------
  setHandler(checkInSignal, (c: CheckInSignal) => {
    if (s.status !== VoucherStatus.InTraining) return;
    const session = s.sessions.find((x) => x.sessionId === c.sessionId);
    if (!session || session.verifiedMinutes > 0) return;
    const minutes = Math.max(0, Math.min(session.minutes, Math.floor(c.verifiedMinutes)));
    if (minutes === 0) return;
    session.verifiedMinutes = minutes;
    s.attendedMinutes += minutes;
    s.checkInRate = s.totalMinutes === 0 ? 0 : Math.floor((s.attendedMinutes * 10000) / s.totalMinutes) / 100;
    touch();
  });

  setHandler(completeSignal, (c: CompleteSignal) => {
    if (s.status !== VoucherStatus.InTraining || pendingCompletion) return;
    pendingCompletion = c;
  });

  function applyRevoke(r: RevokeSignal): void {
    if (isFinal() || s.status === VoucherStatus.Completed) return;
    s.status = VoucherStatus.Revoked;
    s.endedAt = Date.now();
    s.endReason = `revoked: ${r.reason}`;
    touch();
  }

  setHandler(revokeSignal, (r: RevokeSignal) => {
    if (busy) pendingRevoke = r;
    else applyRevoke(r);
  });

  await publish();

  /**
   * Waits in `status` until it changes or `deadline` passes, writing each reminder on the way
   * (one outbox row per reminder, keyed by voucher + kind). Returns true if the deadline passed.
   */
  async function waitWithReminders(status: VoucherStatus, deadline: number, kind: 'claim' | 'activation' | 'use'): Promise<boolean> {
    const reminders = [...policy.reminderDaysBeforeDeadline]
      .sort((a, b) => b - a)
      .map((days) => ({ days, at: minusCalendarDays(deadline, days, zone) }));
    for (;;) {
      const changed = () => s.status !== status || dirty;
      const next = reminders.find((r) => r.at > Date.now());
      const wakeAt = next ? next.at : deadline;
      const left = wakeAt - Date.now();
      if (left > 0) {
        const signalled = await condition(changed, left);
        if (signalled) {
          await publish();
          if (s.status !== status) return false;
          continue;
        }
      }
      if (next && Date.now() >= next.at && Date.now() < deadline) {
        await acts.queueReminder({
          voucherNo: input.voucherNo,
          personRef: input.personRef,
          kind: `${kind}-deadline-${next.days}d`,
          deadline,
        });
        continue;
      }
      if (Date.now() >= deadline) {
        // A refused or in-flight Update may still be finishing: let it settle before deciding.
        await condition(() => !busy);
        await publish();
        return s.status === status;
      }
    }
  }

  // ---- phase 0: issued, waiting for the holder's claim (R2.7, R3.3 reading) ------------------
  if (input.awaitsClaim && s.claimDeadline !== undefined) {
    if (await waitWithReminders(VoucherStatus.Issued, s.claimDeadline, 'claim')) {
      s.status = VoucherStatus.Expired;
      s.endedAt = Date.now();
      s.endReason = 'NOT_CLAIMED_IN_TIME (R3.3)';
      touch();
    }
  }

  // ---- phase 1: obtained, waiting for activation (R3.1, R3.3) --------------------------------
  // (Without a claim step this runs unconditionally, exactly as before, so older histories replay.)
  if (!input.awaitsClaim || s.status === VoucherStatus.Claimed) {
    if (await waitWithReminders(awaitingActivation, s.activationDeadline!, 'activation')) {
      s.status = VoucherStatus.Expired;
      s.endedAt = Date.now();
      s.endReason = 'NOT_ACTIVATED_IN_TIME (R3.3)';
      touch();
    }
  }

  // ---- phase 2: activated, waiting for use (R3.2, R3.3) -------------------------------------
  if (s.status === VoucherStatus.Activated && s.useDeadline !== undefined) {
    if (await waitWithReminders(VoucherStatus.Activated, s.useDeadline, 'use')) {
      s.status = VoucherStatus.Expired;
      s.endedAt = Date.now();
      s.endReason = 'NOT_USED_IN_TIME (R3.3)';
      touch();
    }
  }

  // ---- phase 3: in training until completion (no expiry while training runs, R3.2 reading) ---
  while (s.status === VoucherStatus.InTraining && !pendingCompletion) {
    await condition(() => dirty || !!pendingCompletion || s.status !== VoucherStatus.InTraining);
    await publish();
  }

  // ---- phase 4: settlement (R3.8–R3.10) -----------------------------------------------------
  if (s.status === VoucherStatus.InTraining && pendingCompletion && s.classPlan) {
    s.status = VoucherStatus.Completed;
    s.completedAt = Date.now();
    s.assessmentPassed = pendingCompletion.assessmentPassed;
    s.certificateNo = pendingCompletion.certificateNo;
    touch();
    await publish();
    const result = await acts.settleVoucher({
      voucherNo: input.voucherNo,
      type: input.type,
      issuerDistrict: input.issuerDistrict,
      personRef: input.personRef,
      classPlan: s.classPlan,
      attendedMinutes: s.attendedMinutes,
      totalMinutes: s.totalMinutes,
      assessmentPassed: pendingCompletion.assessmentPassed,
      certificateNo: pendingCompletion.certificateNo,
      completedAt: s.completedAt,
      checkInRateThresholdPct: policy.checkInRateThresholdPct,
      policyVersion: policy.version,
      timeZone: zone,
    });
    s.settlement = result;
    s.status = result.outcome === 'approved' ? VoucherStatus.Settled : VoucherStatus.Rejected;
    s.endedAt = Date.now();
    s.endReason = result.reason;
    touch();
  }

  await publish();
  log.info('voucher closed', { voucherNo: input.voucherNo, status: s.status, runId: workflowInfo().runId });
  return { ...s };
}
