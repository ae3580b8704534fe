/**
 * The versioned voucher policy. Every number the rules leave to policy lives here and nowhere else;
 * the version in force when a voucher is issued is captured into that voucher's workflow input, so a
 * later change never rewrites running vouchers. `db/migrations` mirrors these versions into the
 * `policy_versions` table, from which issuance reads the version in force.
 */
export interface PolicyParams {
  /** Stable identifier of this version, e.g. `SX-2022-11/v1`. */
  version: string;
  /** First day (Asia/Shanghai, `YYYY-MM-DD`) this version applies to newly issued vouchers. */
  effectiveFrom: string;
  /** IANA zone all policy dates are computed in. */
  timeZone: string;
  /**
   * R2.7, R3.3 (reading): calendar months from issue within which the holder must obtain (claim) the
   * voucher through a channel; the parameter table's "3 calendar months from issue".
   */
  claimWindowMonths: number;
  /** R3.1: calendar months from obtaining the voucher to the activation deadline. */
  activationWindowMonths: number;
  /** R3.2: calendar months from activation to the use deadline. */
  useValidityMonths: number;
  /** R3.4: vouchers a person may activate per calendar year. */
  vouchersPerPersonPerYear: number;
  /** R2.3: months of UI contributions in the issuing district needed for a general voucher. */
  generalVoucherMinUiMonthsInDistrict: number;
  /** R3.10: check-in rate threshold, in percent, for a directed voucher's subsidy. */
  checkInRateThresholdPct: number;
  /** R4.4: strikes of one kind within the strike window that put an institution under rectification. */
  strikesBeforeRectification: number;
  /** R4.4: the strike window ("in a year"), in calendar months. */
  strikeWindowMonths: number;
  /** Days before each deadline on which the holder is reminded (one outbox row per reminder). */
  reminderDaysBeforeDeadline: number[];
  /** R3.10: length of one QR check-in token window in seconds; the classroom code rotates each window. */
  qrTokenWindowSeconds: number;
  /** R3.10: greatest distance in metres between a trainee's geolocated check-in and the venue. */
  checkInRadiusMeters: number;
  /** PIPL art. 28: days after a voucher ends (settled, rejected, expired, revoked) that raw check-in coordinates are kept. */
  checkInCoordinateRetentionDays: number;
}

export const POLICY_VERSIONS: readonly PolicyParams[] = Object.freeze([
  Object.freeze({
    version: 'SX-2022-11/v1',
    effectiveFrom: '2021-07-01',
    timeZone: 'Asia/Shanghai',
    claimWindowMonths: 3,
    activationWindowMonths: 3,
    useValidityMonths: 6,
    vouchersPerPersonPerYear: 1,
    generalVoucherMinUiMonthsInDistrict: 36,
    checkInRateThresholdPct: 60,
    strikesBeforeRectification: 3,
    strikeWindowMonths: 12,
    reminderDaysBeforeDeadline: Object.freeze([14, 3]) as number[],
    qrTokenWindowSeconds: 60,
    checkInRadiusMeters: 300,
    checkInCoordinateRetentionDays: 90,
  }),
]);

/** The version in force on a local date (`YYYY-MM-DD`): the latest whose effectiveFrom is not after it. */
export function policyInForce(localDate: string, versions: readonly PolicyParams[] = POLICY_VERSIONS): PolicyParams {
  const candidates = versions.filter((v) => v.effectiveFrom <= localDate).sort((a, b) => (a.effectiveFrom < b.effectiveFrom ? 1 : -1));
  const found = candidates[0];
  if (!found) throw new Error(`no policy version in force on ${localDate}`);
  return found;
}

/** Validates a policy object read back from storage; throws on a missing or ill-typed parameter. */
export function assertPolicy(p: unknown): asserts p is PolicyParams {
  const o = p as Record<string, unknown>;
  const ints = [
    'claimWindowMonths',
    'activationWindowMonths',
    'useValidityMonths',
    'vouchersPerPersonPerYear',
    'generalVoucherMinUiMonthsInDistrict',
    'checkInRateThresholdPct',
    'strikesBeforeRectification',
    'strikeWindowMonths',
    'qrTokenWindowSeconds',
    'checkInRadiusMeters',
    'checkInCoordinateRetentionDays',
  ];
  for (const k of ints) {
    if (!Number.isInteger(o[k]) || (o[k] as number) < 0) throw new Error(`policy parameter ${k} must be a non-negative integer`);
  }
  if ((o.qrTokenWindowSeconds as number) < 1) throw new Error('policy parameter qrTokenWindowSeconds must be positive');
  if (typeof o.version !== 'string' || typeof o.timeZone !== 'string' || typeof o.effectiveFrom !== 'string') {
    throw new Error('policy version, timeZone and effectiveFrom must be strings');
  }
  if (!Array.isArray(o.reminderDaysBeforeDeadline) || !o.reminderDaysBeforeDeadline.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error('policy reminderDaysBeforeDeadline must be positive integers');
  }
}
