/**
 * Voucher eligibility (R1.2, R2.3, R2.4): pure functions from a person record, a voucher kind, the
 * issuing district, a decision date and the policy in force to a decision. No I/O and no clock: the
 * decision date (Asia/Shanghai, `YYYY-MM-DD`) is a parameter. Every failing rule is reported, not
 * just the first, each with a stable machine-readable code.
 */
import { isShaoxingDistrict } from '../policy/districts';
import type { PolicyParams } from '../policy/policy';
import type { VoucherType } from '../workflows/voucher/contract';

/** R2.4 priority groups (重点群体), by tag code. Recorded on the decision; never change eligibility. */
export const PRIORITY_GROUPS = Object.freeze({
  low_income_rural: '建档立卡低收入农户家庭劳动力',
  employment_difficulty: '就业困难人员',
  zero_employment_family: '零就业家庭成员',
  rural_two_after: '“两后生”中的农村人员',
  urban_dibao: '城市低保家庭成员',
} as const);
export type PriorityGroup = keyof typeof PRIORITY_GROUPS;
export const PRIORITY_GROUP_CODES = Object.keys(PRIORITY_GROUPS) as PriorityGroup[];

export function isPriorityGroup(tag: unknown): tag is PriorityGroup {
  return typeof tag === 'string' && Object.prototype.hasOwnProperty.call(PRIORITY_GROUPS, tag);
}

export const EMPLOYMENT_STATUSES = ['employed', 'self_employed', 'unemployed'] as const;
export type EmploymentStatus = (typeof EMPLOYMENT_STATUSES)[number];

/** What the engine knows of a person. District fields hold 6-digit administrative division codes. */
export interface PersonRecord {
  /** R1.2: on the civil-service / public-institution establishment (机关事业在编人员). */
  civilService: boolean;
  /** 户籍 */
  householdDistrict: string | null;
  /** 居住证 */
  residencePermitDistrict: string | null;
  employmentDistrict: string | null;
  employmentStatus: EmploymentStatus | null;
  /** UI contribution history, one row per district and month (`YYYY-MM`); duplicates are tolerated. */
  uiContributions: { district: string; month: string }[];
  /**
   * Where the UI register says the person lawfully pays UI now. When present it is authoritative;
   * when null, current payment is derived: a contribution in the decision month or the month before.
   */
  uiPayingNow: { district: string } | null;
  /** 失业登记地; not a directed-voucher link (R2.4), kept for the paying-district order (R3.8). */
  unemploymentRegDistrict: string | null;
  /** From an east–west cooperation partner area (东西部协作对口支援地区). */
  eastWestPartner: boolean;
  /** R2.4 priority-group tags, codes of PRIORITY_GROUPS. */
  priorityGroups: string[];
}

export type RuleId = 'R1.2' | 'R2.1' | 'R2.3' | 'R2.4';

export type ReasonCode =
  | 'CIVIL_SERVICE_EXCLUDED'
  | 'UNKNOWN_DISTRICT'
  | 'UI_NOT_PAID_IN_DISTRICT'
  | 'UI_MONTHS_IN_DISTRICT_BELOW_MIN'
  | 'NO_LINK_TO_DISTRICT';

export interface Reason {
  code: ReasonCode;
  rule: RuleId;
  /** Human-readable; not for machines (use code, have, need). */
  detail: string;
  have?: number;
  need?: number;
}

export interface EligibilityDecision {
  /** True exactly when reasons is empty. */
  eligible: boolean;
  reasons: Reason[];
  /** R2.4: the person's priority groups, deduplicated, recorded whether or not eligible. */
  priorityGroups: PriorityGroup[];
}

/** One malformed field of a person record; `path` is JSON-pointer-like (`uiContributions/3/month`). */
export interface ValidationIssue {
  path: string;
  code:
    | 'NOT_AN_OBJECT'
    | 'INVALID_TYPE'
    | 'INVALID_DISTRICT_CODE'
    | 'UNKNOWN_SHAOXING_DISTRICT'
    | 'INVALID_MONTH'
    | 'INVALID_EMPLOYMENT_STATUS'
    | 'UNKNOWN_PRIORITY_GROUP';
  detail: string;
}

export type ValidationResult = { ok: true; record: PersonRecord } | { ok: false; issues: ValidationIssue[] };

/** Thrown by decideEligibility on input that should have been refused by validation. */
export class InvalidEligibilityInput extends Error {
  constructor(
    message: string,
    readonly issues: ValidationIssue[] = [],
  ) {
    super(message);
    this.name = 'InvalidEligibilityInput';
  }
}

const DISTRICT_CODE = /^[1-9][0-9]{5}$/;
/** Shaoxing city's division prefix: a code under it must be one of the six districts. */
const SHAOXING_PREFIX = '3306';
const MONTH = /^([0-9]{4})-(0[1-9]|1[0-2])$/;
const DATE = /^([0-9]{4})-(0[1-9]|1[0-2])-([0-9]{2})$/;

/**
 * Checks a person record (e.g. a request body) field by field and reports every malformed field, so
 * the API can answer 4xx. District fields accept any 6-digit division code (a person may live, work
 * or pay UI outside Shaoxing), except that a code under Shaoxing's prefix must be one of its six districts.
 */
export function validatePersonRecord(input: unknown): ValidationResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ path: '', code: 'NOT_AN_OBJECT', detail: 'person record must be an object' }] };
  }
  const o = input as Record<string, unknown>;
  const issues: ValidationIssue[] = [];

  const bool = (key: string) => {
    if (typeof o[key] !== 'boolean') issues.push({ path: key, code: 'INVALID_TYPE', detail: `${key} must be a boolean` });
  };
  const district = (path: string, v: unknown, nullable: boolean) => {
    if (v === null && nullable) return;
    if (typeof v !== 'string' || !DISTRICT_CODE.test(v)) {
      issues.push({ path, code: 'INVALID_DISTRICT_CODE', detail: `${path} must be a 6-digit division code${nullable ? ' or null' : ''}` });
    } else if (v.startsWith(SHAOXING_PREFIX) && !isShaoxingDistrict(v)) {
      issues.push({ path, code: 'UNKNOWN_SHAOXING_DISTRICT', detail: `${path} ${v} is not one of Shaoxing's six districts` });
    }
  };

  bool('civilService');
  bool('eastWestPartner');
  for (const key of ['householdDistrict', 'residencePermitDistrict', 'employmentDistrict', 'unemploymentRegDistrict']) {
    district(key, o[key], true);
  }

  const status = o.employmentStatus;
  if (status !== null && !(EMPLOYMENT_STATUSES as readonly unknown[]).includes(status)) {
    issues.push({ path: 'employmentStatus', code: 'INVALID_EMPLOYMENT_STATUS', detail: `employmentStatus must be one of ${EMPLOYMENT_STATUSES.join(', ')} or null` });
  }

  const paying = o.uiPayingNow;
  if (paying !== null) {
    if (typeof paying !== 'object' || Array.isArray(paying)) {
      issues.push({ path: 'uiPayingNow', code: 'INVALID_TYPE', detail: 'uiPayingNow must be { district } or null' });
    } else {
      district('uiPayingNow/district', (paying as Record<string, unknown>).district, false);
    }
  }

  if (!Array.isArray(o.uiContributions)) {
    issues.push({ path: 'uiContributions', code: 'INVALID_TYPE', detail: 'uiContributions must be an array' });
  } else {
    o.uiContributions.forEach((row: unknown, i) => {
      const path = `uiContributions/${i}`;
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        issues.push({ path, code: 'INVALID_TYPE', detail: `${path} must be { district, month }` });
        return;
      }
      const r = row as Record<string, unknown>;
      district(`${path}/district`, r.district, false);
      if (typeof r.month !== 'string' || !MONTH.test(r.month)) {
        issues.push({ path: `${path}/month`, code: 'INVALID_MONTH', detail: `${path}/month must be YYYY-MM` });
      }
    });
  }

  if (!Array.isArray(o.priorityGroups)) {
    issues.push({ path: 'priorityGroups', code: 'INVALID_TYPE', detail: 'priorityGroups must be an array' });
  } else {
    o.priorityGroups.forEach((tag: unknown, i) => {
      if (!isPriorityGroup(tag)) {
        issues.push({
          path: `priorityGroups/${i}`,
          code: 'UNKNOWN_PRIORITY_GROUP',
          detail: `unknown priority group ${JSON.stringify(tag)}; known: ${PRIORITY_GROUP_CODES.join(', ')}`,
        });
      }
    });
  }

  return issues.length ? { ok: false, issues } : { ok: true, record: o as unknown as PersonRecord };
}

/** Months since year 0 of a `YYYY-MM` month, for arithmetic. */
function monthIndex(month: string): number {
  return Number(month.slice(0, 4)) * 12 + Number(month.slice(5, 7)) - 1;
}

/** The `YYYY-MM` month of a valid local date `YYYY-MM-DD`; throws on anything else. */
function decisionMonth(date: string): string {
  const m = DATE.exec(date);
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
    if (d >= 1 && d <= daysInMonth) return date.slice(0, 7);
  }
  throw new InvalidEligibilityInput(`decision date must be a local date YYYY-MM-DD, got ${JSON.stringify(date)}`);
}

/**
 * R2.3: distinct months of UI contributions in `district` up to and including the decision month.
 * Months in other districts do not count; duplicate rows count once; later months do not count.
 */
export function uiMonthsInDistrict(person: PersonRecord, district: string, date: string): number {
  const upTo = decisionMonth(date);
  const months = new Set<string>();
  for (const c of person.uiContributions) {
    if (c.district === district && c.month <= upTo) months.add(c.month);
  }
  return months.size;
}

/**
 * R2.3, R2.4: pays UI lawfully in `district` now. The register's uiPayingNow is authoritative when
 * present; otherwise a contribution in the district in the decision month or the month before counts.
 */
export function isPayingUiIn(person: PersonRecord, district: string, date: string): boolean {
  if (person.uiPayingNow) return person.uiPayingNow.district === district;
  const now = monthIndex(decisionMonth(date));
  return person.uiContributions.some((c) => c.district === district && (monthIndex(c.month) === now || monthIndex(c.month) === now - 1));
}

export type DistrictLink = 'employed_in_district' | 'ui_payer_in_district' | 'unemployed_resident' | 'east_west_partner';

/** R2.4: the person's links to `district` that make them eligible for a directed voucher there. */
export function directedLinks(person: PersonRecord, district: string, date: string): DistrictLink[] {
  const links: DistrictLink[] = [];
  const working = person.employmentStatus === 'employed' || person.employmentStatus === 'self_employed';
  if (working && person.employmentDistrict === district) links.push('employed_in_district');
  if (isPayingUiIn(person, district, date)) links.push('ui_payer_in_district');
  if (person.employmentStatus === 'unemployed' && (person.householdDistrict === district || person.residencePermitDistrict === district)) {
    links.push('unemployed_resident');
  }
  if (person.eastWestPartner) links.push('east_west_partner');
  return links;
}

/**
 * Decides whether `person` may hold a voucher of `kind` issued by `issuingDistrict` on `date`
 * (local `YYYY-MM-DD`) under `policy`. Throws InvalidEligibilityInput on a malformed record or date:
 * validate requests with validatePersonRecord first.
 */
export function decideEligibility(
  person: PersonRecord,
  kind: VoucherType,
  issuingDistrict: string,
  date: string,
  policy: PolicyParams,
): EligibilityDecision {
  const valid = validatePersonRecord(person);
  if (!valid.ok) throw new InvalidEligibilityInput('malformed person record', valid.issues);
  if (kind !== 'general' && kind !== 'directed') throw new InvalidEligibilityInput(`unknown voucher kind ${JSON.stringify(kind)}`);
  decisionMonth(date);

  const reasons: Reason[] = [];

  // R1.2: the establishment exclusion carries to every voucher kind.
  if (person.civilService) {
    reasons.push({ code: 'CIVIL_SERVICE_EXCLUDED', rule: 'R1.2', detail: 'civil-service / public-institution establishment staff are excluded' });
  }

  // R2.1: vouchers are made by one of the six district HR bureaus; district-relative rules below
  // are meaningless against any other code, so they are not evaluated.
  if (!isShaoxingDistrict(issuingDistrict)) {
    reasons.push({ code: 'UNKNOWN_DISTRICT', rule: 'R2.1', detail: `issuing district ${JSON.stringify(issuingDistrict)} is not a Shaoxing district` });
  } else if (kind === 'general') {
    // R2.3: paying UI in the issuing district now, and enough months there.
    if (!isPayingUiIn(person, issuingDistrict, date)) {
      reasons.push({ code: 'UI_NOT_PAID_IN_DISTRICT', rule: 'R2.3', detail: `not paying unemployment insurance in ${issuingDistrict} now` });
    }
    const have = uiMonthsInDistrict(person, issuingDistrict, date);
    const need = policy.generalVoucherMinUiMonthsInDistrict;
    if (have < need) {
      reasons.push({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', rule: 'R2.3', detail: `have ${have}, need ${need}`, have, need });
    }
  } else if (directedLinks(person, issuingDistrict, date).length === 0) {
    // R2.4: any one link to the district suffices.
    reasons.push({
      code: 'NO_LINK_TO_DISTRICT',
      rule: 'R2.4',
      detail: `not employed, paying UI, or unemployed with household registration or residence permit in ${issuingDistrict}, nor from an east–west partner area`,
    });
  }

  // R2.4 Reading: priority groups are recorded and never change eligibility.
  const priorityGroups = [...new Set(person.priorityGroups)] as PriorityGroup[];
  return { eligible: reasons.length === 0, reasons, priorityGroups };
}
