/**
 * The voucher domain's contract: task queue, ID helper, statuses, inputs and results. Pure types and
 * constants, imported by the workflow, the activities, the worker and the API alike.
 */
import type { PolicyParams } from '../../policy/policy';

export const VOUCHER_TASK_QUEUE = 'vouchers';

/** Workflow ID of a voucher. Voucher numbers carry no personal data, so neither does the ID. */
export function voucherWorkflowId(voucherNo: string): string {
  return `Voucher:${voucherNo}`;
}

export const VOUCHER_NO_PATTERN = /^SX[0-9]{6}[0-9]{4}[0-9]{6}$/;

export type VoucherType = 'general' | 'directed';

export const VoucherStatus = {
  /** Made and issued by HR; awaiting the holder's claim (R2.7), or (vouchers issued before claims existed) activation. */
  Issued: 'issued',
  /** Obtained by the holder through a channel after real-name verification (R2.7); the activation clock runs. */
  Claimed: 'claimed',
  Activated: 'activated',
  InTraining: 'in_training',
  Completed: 'completed',
  Settled: 'settled',
  Rejected: 'rejected',
  Expired: 'expired',
  Revoked: 'revoked',
} as const;
export type VoucherStatus = (typeof VoucherStatus)[keyof typeof VoucherStatus];

export const TERMINAL_STATUSES: readonly VoucherStatus[] = ['settled', 'rejected', 'expired', 'revoked'];

/** Input captured at issue; never changes for the life of the voucher. */
export interface VoucherInput {
  voucherNo: string;
  type: VoucherType;
  issuerDistrict: string;
  /** Keyed hash (HMAC) of the holder's resident ID number: a pseudonym, never the number itself. */
  personRef: string;
  /** Directed vouchers may fix an occupation (工种) code. */
  occupationCode?: string;
  priorityGroups: string[];
  /**
   * R2.7: the holder obtains the voucher later, by claiming it through a channel after real-name
   * verification; the activation clock starts at the claim. Absent on vouchers started before claims
   * existed (and on direct starts): those were obtained at issue.
   */
  awaitsClaim?: boolean;
  /** When HR issued the voucher (epoch ms); set when `awaitsClaim`. */
  issuedAt?: number;
  /** When the holder obtained the voucher at issue (epoch ms); set when not `awaitsClaim` (R3.1 clock). */
  obtainedAt?: number;
  /**
   * Upsert only the search attributes that changed (a check-in: `CheckInRate` alone; the issue: none,
   * the start carries them). Set on every voucher started since; absent on older ones, which upsert the
   * whole set on every publication, as their histories did.
   */
  searchAttributesOnChange?: boolean;
  /**
   * The issuer writes the state at issue (`initialSnapshot`) to the read model itself and does not
   * report the voucher issued until it has (list issuance: the chunk activity retries until its batch
   * is written), so the workflow skips its own first projection, which would change nothing. Absent on
   * older vouchers and on single issues, whose workflows project the state at issue as before.
   */
  projectedAtIssue?: boolean;
  /** The policy in force at issue, captured whole. */
  policy: PolicyParams;
}

/** When a voucher was issued, whichever form its input has. */
export function issuedAtOf(input: VoucherInput): number {
  const at = input.issuedAt ?? input.obtainedAt;
  if (at === undefined) throw new Error('voucher input has neither issuedAt nor obtainedAt');
  return at;
}

export const CLAIM_CHANNELS = ['zlb', 'zwfw', 'alipay', 'wechat', 'e-sscard'] as const;
export type ClaimChannel = (typeof CLAIM_CHANNELS)[number];

export interface ClaimRequest {
  /** The channel the holder obtained the voucher through, after the API's real-name check (R2.7). */
  channel: ClaimChannel;
}

export interface PlannedSession {
  sessionId: string;
  startsAt: number;
  endsAt: number;
  /** Class time of the session in minutes (a class hour is a fixed number of them). */
  minutes: number;
}

export interface ClassPlan {
  classId: string;
  institutionId: string;
  occupationCode: string;
  level: string;
  trainingKind: 'certificate' | 'project' | 'special';
  sessions: PlannedSession[];
}

export interface ActivateRequest {
  /** Channel the holder activates through (for the record). */
  channel?: string;
}

export interface EnrolRequest {
  classId: string;
  institutionId: string;
  /** The institution's own eligibility review of the holder (R3.7), recorded with the enrolment. */
  review: { passed: boolean; note?: string };
}

export interface CheckInSignal {
  sessionId: string;
  /** Verified minutes for this session (offline: the session's minutes; online: reported learning time). */
  verifiedMinutes: number;
  at: number;
}

export interface CompleteSignal {
  assessmentPassed: boolean;
  /** General vouchers: the certificate obtained (R3.8); matched against the certificate registry. */
  certificateNo?: string;
}

export interface RevokeSignal {
  reason: string;
  by: string;
}

export type SettlementOutcome = 'approved' | 'rejected';

export interface SettlementResult {
  outcome: SettlementOutcome;
  /** Machine-readable reason for a rejection, with the rule that decided it. */
  reason?: string;
  rule?: string;
  amountFen?: number;
  payerDistrict?: string;
  payeeType?: 'institution' | 'person';
  payeeRef?: string;
  fundingSource?: string;
  paymentRoute?: string;
  /** R3.12: approved money reserved in the budget, or waiting in the budget queue (additive). */
  budgetStatus?: 'reserved' | 'waiting_budget';
  decidedAt: number;
}

export interface SessionProgress {
  sessionId: string;
  minutes: number;
  verifiedMinutes: number;
}

/** The full state of a voucher, as its query returns it and its read model stores it. */
export interface VoucherSnapshot {
  revision: number;
  voucherNo: string;
  type: VoucherType;
  status: VoucherStatus;
  issuerDistrict: string;
  personRef: string;
  occupationCode?: string;
  priorityGroups: string[];
  policyVersion: string;
  issuedAt: number;
  /** R2.7: the claim deadline of a voucher that awaits its claim. */
  claimDeadline?: number;
  claimedAt?: number;
  claimChannel?: ClaimChannel;
  /** When the holder obtained the voucher (the claim, or the issue for vouchers without a claim step). */
  obtainedAt?: number;
  /** R3.1: set once the voucher is obtained. */
  activationDeadline?: number;
  activatedAt?: number;
  activationYear?: number;
  useDeadline?: number;
  enrolledAt?: number;
  classPlan?: ClassPlan;
  sessions: SessionProgress[];
  attendedMinutes: number;
  totalMinutes: number;
  /** Verified minutes / planned minutes, in percent with two decimals (display only; decisions use integers). */
  checkInRate: number;
  completedAt?: number;
  assessmentPassed?: boolean;
  certificateNo?: string;
  settlement?: SettlementResult;
  endedAt?: number;
  endReason?: string;
}

/** Refusal reasons an Update or the API returns, each with the rule behind it where one applies. */
export const Refusal = {
  NotClaimed: { code: 'VOUCHER_NOT_CLAIMED', rule: 'R2.7' },
  NotAwaitingClaim: { code: 'VOUCHER_NOT_AWAITING_CLAIM', rule: 'R2.7' },
  ClaimWindowClosed: { code: 'CLAIM_WINDOW_CLOSED', rule: 'R3.3' },
  NotIssued: { code: 'VOUCHER_NOT_AWAITING_ACTIVATION', rule: 'R3.1' },
  ActivationWindowClosed: { code: 'ACTIVATION_WINDOW_CLOSED', rule: 'R3.1' },
  QuotaUsed: { code: 'ANNUAL_QUOTA_USED', rule: 'R3.4' },
  NotActive: { code: 'VOUCHER_NOT_ACTIVE', rule: 'R3.2' },
  UseWindowClosed: { code: 'USE_WINDOW_CLOSED', rule: 'R3.2' },
  OccupationMismatch: { code: 'OCCUPATION_MISMATCH', rule: 'R3.7' },
  ClassNotFound: { code: 'CLASS_NOT_FOUND', rule: undefined },
  InstitutionMismatch: { code: 'CLASS_OF_ANOTHER_INSTITUTION', rule: undefined },
  InstitutionNotApproved: { code: 'INSTITUTION_NOT_APPROVED', rule: 'R4.1' },
  InstitutionUnderRectification: { code: 'INSTITUTION_UNDER_RECTIFICATION', rule: 'R4.4' },
  ClassStartedNotOnRoster: { code: 'CLASS_STARTED_NOT_ON_ROSTER', rule: 'R4.2' },
  ClassFull: { code: 'CLASS_FULL', rule: undefined },
  ReviewFailed: { code: 'INSTITUTION_REVIEW_FAILED', rule: 'R3.7' },
  EnrolmentInProgress: { code: 'ACTION_IN_PROGRESS', rule: undefined },
} as const;
export type RefusalCode = (typeof Refusal)[keyof typeof Refusal]['code'];
