/**
 * Voucher eligibility by hand: every reason code, the eligible cases, and input validation. The UI
 * month threshold is always read from the policy object, never written here.
 */
import {
  decideEligibility,
  InvalidEligibilityInput,
  PRIORITY_GROUP_CODES,
  validatePersonRecord,
  type PersonRecord,
} from '../eligibility/engine';
import { DISTRICT_CODES } from '../policy/districts';
import { POLICY_VERSIONS, type PolicyParams } from '../policy/policy';

const POLICY: PolicyParams = POLICY_VERSIONS[0]!;
const NEED = POLICY.generalVoucherMinUiMonthsInDistrict;
const D = '330602'; // 越城区, the issuing district
const OTHER = '330603'; // 柯桥区
const OUTSIDE = '330106'; // Hangzhou 西湖区
const DATE = '2026-03-15';

/** `n` consecutive months ending with `last` (`YYYY-MM`), newest first. */
function monthsBack(last: string, n: number): string[] {
  const start = Number(last.slice(0, 4)) * 12 + Number(last.slice(5, 7)) - 1;
  return Array.from({ length: n }, (_, i) => {
    const idx = start - i;
    return `${Math.floor(idx / 12)}-${String((idx % 12) + 1).padStart(2, '0')}`;
  });
}

function contributions(district: string, months: string[]): PersonRecord['uiContributions'] {
  return months.map((month) => ({ district, month }));
}

function person(over: Partial<PersonRecord> = {}): PersonRecord {
  return {
    civilService: false,
    householdDistrict: null,
    residencePermitDistrict: null,
    employmentDistrict: null,
    employmentStatus: null,
    uiContributions: [],
    uiPayingNow: null,
    unemploymentRegDistrict: null,
    eastWestPartner: false,
    priorityGroups: [],
    ...over,
  };
}

/** A general-voucher holder in D: paying there now, with exactly `months` distinct months there. */
function generalPerson(months: number, over: Partial<PersonRecord> = {}): PersonRecord {
  return person({ employmentStatus: 'employed', employmentDistrict: D, uiPayingNow: { district: D }, uiContributions: contributions(D, monthsBack('2026-03', months)), ...over });
}

const codes = (p: PersonRecord, kind: 'general' | 'directed', district = D, date = DATE) =>
  decideEligibility(p, kind, district, date, POLICY).reasons.map((r) => r.code);

describe('R2.3 general voucher', () => {
  test('the policy asks for at least one month (the boundary tests below rely on it)', () => {
    expect(NEED).toBeGreaterThan(0);
  });

  test('R2.3: paying in the district with the policy minimum of months there is eligible', () => {
    expect(decideEligibility(generalPerson(NEED), 'general', D, DATE, POLICY)).toEqual({ eligible: true, reasons: [], priorityGroups: [] });
  });

  test.each(DISTRICT_CODES)('R2.3: each of the six districts can issue (%s)', (district) => {
    const p = generalPerson(0, { uiPayingNow: { district }, uiContributions: contributions(district, monthsBack('2026-03', NEED)) });
    expect(decideEligibility(p, 'general', district, DATE, POLICY).eligible).toBe(true);
  });

  test(`R2.3: one month short of the minimum in the district is not enough`, () => {
    const d = decideEligibility(generalPerson(NEED - 1), 'general', D, DATE, POLICY);
    expect(d.eligible).toBe(false);
    expect(d.reasons).toEqual([
      { code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', rule: 'R2.3', detail: `have ${NEED - 1}, need ${NEED}`, have: NEED - 1, need: NEED },
    ]);
  });

  test('R2.3: months in other districts, in or outside Shaoxing, do not count', () => {
    const p = generalPerson(NEED - 1, {
      uiContributions: [
        ...contributions(D, monthsBack('2026-03', NEED - 1)),
        ...contributions(OTHER, monthsBack('2026-03', NEED * 2)),
        ...contributions(OUTSIDE, monthsBack('2020-01', NEED)),
      ],
    });
    const d = decideEligibility(p, 'general', D, DATE, POLICY);
    expect(d.reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', have: NEED - 1, need: NEED })]);
  });

  test('R2.3: the minimum reached in another district does not qualify for this one', () => {
    const p = generalPerson(0, { uiContributions: contributions(OTHER, monthsBack('2026-03', NEED)) });
    expect(decideEligibility(p, 'general', D, DATE, POLICY).reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', have: 0 })]);
    expect(decideEligibility({ ...p, uiPayingNow: { district: OTHER } }, 'general', OTHER, DATE, POLICY).eligible).toBe(true);
  });

  test('R2.3: duplicate rows for one month count once', () => {
    const months = monthsBack('2026-03', NEED - 1);
    const p = generalPerson(0, { uiContributions: [...contributions(D, months), ...contributions(D, months), { district: D, month: months[0]! }] });
    expect(decideEligibility(p, 'general', D, DATE, POLICY).reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', have: NEED - 1 })]);
  });

  test('R2.3: months after the decision date do not count; the decision month does', () => {
    const past = monthsBack('2026-02', NEED - 1);
    const future = ['2026-04', '2026-05', '2027-01'];
    const p = generalPerson(0, { uiContributions: contributions(D, [...past, ...future]) });
    expect(decideEligibility(p, 'general', D, DATE, POLICY).reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', have: NEED - 1 })]);
    const withDecisionMonth = { ...p, uiContributions: [...p.uiContributions, { district: D, month: '2026-03' }] };
    expect(decideEligibility(withDecisionMonth, 'general', D, DATE, POLICY).eligible).toBe(true);
    // The same record decided a month later counts April too.
    expect(decideEligibility(p, 'general', D, '2026-04-01', POLICY).eligible).toBe(true);
  });

  test('R2.3: not paying UI anywhere now is refused even with the months', () => {
    const p = generalPerson(0, { uiPayingNow: null, uiContributions: contributions(D, monthsBack('2025-12', NEED)) });
    expect(decideEligibility(p, 'general', D, DATE, POLICY).reasons).toEqual([
      { code: 'UI_NOT_PAID_IN_DISTRICT', rule: 'R2.3', detail: expect.stringContaining(D) },
    ]);
  });

  test('R2.3: paying in another district now is refused, even with recent months in this one', () => {
    const p = generalPerson(NEED, { uiPayingNow: { district: OTHER } });
    expect(codes(p, 'general')).toEqual(['UI_NOT_PAID_IN_DISTRICT']);
  });

  test('R2.3: without a register entry, a contribution in the decision month or the month before means paying now', () => {
    expect(codes(generalPerson(NEED, { uiPayingNow: null }), 'general')).toEqual([]);
    const lastMonth = generalPerson(0, { uiPayingNow: null, uiContributions: contributions(D, monthsBack('2026-02', NEED)) });
    expect(codes(lastMonth, 'general')).toEqual([]);
    const twoMonthsAgo = generalPerson(0, { uiPayingNow: null, uiContributions: contributions(D, monthsBack('2026-01', NEED)) });
    expect(codes(twoMonthsAgo, 'general')).toEqual(['UI_NOT_PAID_IN_DISTRICT']);
  });

  test('R2.3: the month before the decision month crosses a year end', () => {
    const p = generalPerson(0, { uiPayingNow: null, uiContributions: contributions(D, monthsBack('2025-12', NEED)) });
    expect(codes(p, 'general', D, '2026-01-31')).toEqual([]);
  });

  test('R2.3: not paying and too few months reports both reasons', () => {
    expect(codes(person(), 'general')).toEqual(['UI_NOT_PAID_IN_DISTRICT', 'UI_MONTHS_IN_DISTRICT_BELOW_MIN']);
  });

  test('R2.3: the threshold is the policy parameter, not a constant', () => {
    const stricter = { ...POLICY, generalVoucherMinUiMonthsInDistrict: NEED + 1 };
    const d = decideEligibility(generalPerson(NEED), 'general', D, DATE, stricter);
    expect(d.reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', detail: `have ${NEED}, need ${NEED + 1}` })]);
  });

  test('R2.3: a directed-voucher link (being unemployed with local 户籍) does not make a general voucher', () => {
    expect(codes(person({ employmentStatus: 'unemployed', householdDistrict: D }), 'general')).toEqual(['UI_NOT_PAID_IN_DISTRICT', 'UI_MONTHS_IN_DISTRICT_BELOW_MIN']);
  });
});

describe('R1.2 civil-service exclusion', () => {
  test('R1.2: establishment staff are excluded from the general voucher even when R2.3 is met', () => {
    const d = decideEligibility(generalPerson(NEED, { civilService: true }), 'general', D, DATE, POLICY);
    expect(d).toEqual({ eligible: false, reasons: [{ code: 'CIVIL_SERVICE_EXCLUDED', rule: 'R1.2', detail: expect.any(String) }], priorityGroups: [] });
  });

  test('R1.2: the exclusion carries to the directed voucher ("除外，下同")', () => {
    const p = person({ civilService: true, employmentStatus: 'employed', employmentDistrict: D, eastWestPartner: true });
    expect(codes(p, 'directed')).toEqual(['CIVIL_SERVICE_EXCLUDED']);
  });

  test('R1.2: all failing reasons are returned together, not just the first', () => {
    expect(codes(person({ civilService: true }), 'general')).toEqual(['CIVIL_SERVICE_EXCLUDED', 'UI_NOT_PAID_IN_DISTRICT', 'UI_MONTHS_IN_DISTRICT_BELOW_MIN']);
    expect(codes(person({ civilService: true }), 'directed')).toEqual(['CIVIL_SERVICE_EXCLUDED', 'NO_LINK_TO_DISTRICT']);
  });
});

describe('R2.1 issuing district', () => {
  test.each([
    ['a Hangzhou district', '330106'],
    ["Shaoxing's city-level code", '330600'],
    ['Shaoxing 市辖区', '330601'],
    ['an empty string', ''],
    ['a malformed code', '33O602'],
  ])('R2.1: %s is UNKNOWN_DISTRICT for both kinds', (_label, district) => {
    const p = generalPerson(NEED, { uiPayingNow: { district: OUTSIDE }, uiContributions: contributions(OUTSIDE, monthsBack('2026-03', NEED)), eastWestPartner: true });
    for (const kind of ['general', 'directed'] as const) {
      const d = decideEligibility(p, kind, district, DATE, POLICY);
      expect(d.eligible).toBe(false);
      // District-relative rules are not evaluated against a non-district.
      expect(d.reasons).toEqual([{ code: 'UNKNOWN_DISTRICT', rule: 'R2.1', detail: expect.any(String) }]);
    }
  });

  test('R2.1 R1.2: an unknown district and the civil-service exclusion are both reported', () => {
    expect(codes(person({ civilService: true }), 'directed', '110101')).toEqual(['CIVIL_SERVICE_EXCLUDED', 'UNKNOWN_DISTRICT']);
  });
});

describe('R2.4 directed voucher', () => {
  test.each<[string, Partial<PersonRecord>]>([
    ['employed in the district', { employmentStatus: 'employed', employmentDistrict: D }],
    ['self-employed in the district', { employmentStatus: 'self_employed', employmentDistrict: D }],
    ['a UI payer in the district (register)', { uiPayingNow: { district: D } }],
    ['a UI payer in the district (contribution last month)', { uiContributions: [{ district: D, month: '2026-02' }] }],
    ['unemployed with household registration in the district', { employmentStatus: 'unemployed', householdDistrict: D }],
    ['unemployed with a residence permit in the district', { employmentStatus: 'unemployed', householdDistrict: OUTSIDE, residencePermitDistrict: D }],
    ['from an east–west partner area', { eastWestPartner: true, householdDistrict: '520102' }],
  ])('R2.4: eligible when %s', (_label, over) => {
    expect(decideEligibility(person(over), 'directed', D, DATE, POLICY)).toEqual({ eligible: true, reasons: [], priorityGroups: [] });
  });

  test('R2.4: no UI months are needed for a directed voucher', () => {
    expect(codes(person({ employmentStatus: 'employed', employmentDistrict: D }), 'directed')).toEqual([]);
  });

  test.each<[string, Partial<PersonRecord>]>([
    ['nothing at all', {}],
    ['employed in another district', { employmentStatus: 'employed', employmentDistrict: OTHER, householdDistrict: D }],
    ['an employment district without employment status', { employmentStatus: null, employmentDistrict: D }],
    ['unemployed with employment district here but not residing', { employmentStatus: 'unemployed', employmentDistrict: D, householdDistrict: OTHER }],
    ['employed elsewhere with household registration here', { employmentStatus: 'self_employed', employmentDistrict: OUTSIDE, householdDistrict: D, residencePermitDistrict: D }],
    ['unemployed residing in another district', { employmentStatus: 'unemployed', householdDistrict: OTHER, residencePermitDistrict: OUTSIDE }],
    ['unemployment registration here only', { employmentStatus: 'unemployed', unemploymentRegDistrict: D }],
    ['paying UI in another district', { uiPayingNow: { district: OTHER }, uiContributions: contributions(D, monthsBack('2026-03', NEED)) }],
    ['UI contributions here that stopped two months ago', { uiContributions: contributions(D, monthsBack('2026-01', NEED)) }],
    ['a UI contribution here only after the decision date', { uiContributions: [{ district: D, month: '2026-04' }] }],
  ])('R2.4: refused with NO_LINK_TO_DISTRICT when %s', (_label, over) => {
    const d = decideEligibility(person(over), 'directed', D, DATE, POLICY);
    expect(d.eligible).toBe(false);
    expect(d.reasons).toEqual([{ code: 'NO_LINK_TO_DISTRICT', rule: 'R2.4', detail: expect.stringContaining(D) }]);
  });
});

describe('R2.4 priority groups', () => {
  test('R2.4: every known priority group is recorded on the decision, deduplicated', () => {
    const p = person({ eastWestPartner: true, priorityGroups: [...PRIORITY_GROUP_CODES, ...PRIORITY_GROUP_CODES] });
    expect(decideEligibility(p, 'directed', D, DATE, POLICY)).toEqual({ eligible: true, reasons: [], priorityGroups: PRIORITY_GROUP_CODES });
  });

  test('R2.4 Reading: priority groups do not make an unlinked person eligible, and are still recorded', () => {
    const d = decideEligibility(person({ priorityGroups: ['urban_dibao', 'rural_two_after'] }), 'directed', D, DATE, POLICY);
    expect(d).toEqual({ eligible: false, reasons: [expect.objectContaining({ code: 'NO_LINK_TO_DISTRICT' })], priorityGroups: ['urban_dibao', 'rural_two_after'] });
  });

  test('R2.4 Reading: priority groups do not relax the general voucher', () => {
    const d = decideEligibility(generalPerson(NEED - 1, { priorityGroups: ['low_income_rural', 'employment_difficulty', 'zero_employment_family'] }), 'general', D, DATE, POLICY);
    expect(d.eligible).toBe(false);
    expect(d.priorityGroups).toEqual(['low_income_rural', 'employment_difficulty', 'zero_employment_family']);
  });
});

describe('validatePersonRecord', () => {
  test('a well-formed record is accepted as is', () => {
    const p = generalPerson(NEED, {
      householdDistrict: '520102',
      residencePermitDistrict: D,
      unemploymentRegDistrict: OUTSIDE,
      priorityGroups: ['low_income_rural'],
    });
    expect(validatePersonRecord(p)).toEqual({ ok: true, record: p });
  });

  test.each([null, 'person', 42, []])('a non-object (%p) is refused', (input) => {
    expect(validatePersonRecord(input)).toEqual({ ok: false, issues: [{ path: '', code: 'NOT_AN_OBJECT', detail: expect.any(String) }] });
  });

  test('R2.4: an unknown priority-group tag is a validation error, not a reason', () => {
    const r = validatePersonRecord(person({ priorityGroups: ['urban_dibao', 'veteran'] }));
    expect(r).toEqual({ ok: false, issues: [{ path: 'priorityGroups/1', code: 'UNKNOWN_PRIORITY_GROUP', detail: expect.stringContaining('veteran') }] });
  });

  test.each(['2026-13', '2026-00', '2026-1', '202603', '2026-03-01', '', 'march'])('a malformed contribution month %p is refused', (month) => {
    const r = validatePersonRecord(person({ uiContributions: [{ district: D, month: '2026-01' }, { district: D, month }] }));
    expect(r).toEqual({ ok: false, issues: [{ path: 'uiContributions/1/month', code: 'INVALID_MONTH', detail: expect.any(String) }] });
  });

  test.each(['33060', '3306021', 'abcdef', '', '033060'])('a malformed district code %p is refused', (code) => {
    const r = validatePersonRecord(person({ householdDistrict: code }));
    expect(r).toEqual({ ok: false, issues: [{ path: 'householdDistrict', code: 'INVALID_DISTRICT_CODE', detail: expect.any(String) }] });
  });

  test("a code under Shaoxing's prefix that is not one of the six districts is refused; codes elsewhere are accepted", () => {
    const r = validatePersonRecord(person({ employmentDistrict: '330601', uiPayingNow: { district: '330699' }, householdDistrict: '520102' }));
    expect(r).toEqual({
      ok: false,
      issues: [
        { path: 'employmentDistrict', code: 'UNKNOWN_SHAOXING_DISTRICT', detail: expect.any(String) },
        { path: 'uiPayingNow/district', code: 'UNKNOWN_SHAOXING_DISTRICT', detail: expect.any(String) },
      ],
    });
  });

  test('every malformed field is reported, with its path', () => {
    const bad = {
      civilService: 'no',
      householdDistrict: 330602,
      residencePermitDistrict: null,
      employmentStatus: 'retired',
      uiContributions: [{ district: 'x', month: '2026-3' }, 'row'],
      uiPayingNow: 'yes',
      unemploymentRegDistrict: null,
      priorityGroups: ['dibao'],
    };
    const r = validatePersonRecord(bad);
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.issues.map((i) => [i.path, i.code])).toEqual([
      ['civilService', 'INVALID_TYPE'],
      ['eastWestPartner', 'INVALID_TYPE'],
      ['householdDistrict', 'INVALID_DISTRICT_CODE'],
      ['employmentDistrict', 'INVALID_DISTRICT_CODE'],
      ['employmentStatus', 'INVALID_EMPLOYMENT_STATUS'],
      ['uiPayingNow', 'INVALID_TYPE'],
      ['uiContributions/0/district', 'INVALID_DISTRICT_CODE'],
      ['uiContributions/0/month', 'INVALID_MONTH'],
      ['uiContributions/1', 'INVALID_TYPE'],
      ['priorityGroups/0', 'UNKNOWN_PRIORITY_GROUP'],
    ]);
  });
});

describe('decideEligibility input and purity', () => {
  test('a malformed record throws with the validation issues rather than deciding', () => {
    const p = person({ priorityGroups: ['veteran'] });
    expect(() => decideEligibility(p, 'directed', D, DATE, POLICY)).toThrow(InvalidEligibilityInput);
    try {
      decideEligibility(p, 'directed', D, DATE, POLICY);
    } catch (e) {
      expect((e as InvalidEligibilityInput).issues).toEqual([expect.objectContaining({ code: 'UNKNOWN_PRIORITY_GROUP' })]);
    }
  });

  test.each(['2026-02-30', '2026-13-01', '2026-3-15', '2026/03/15', '2026-03-15T00:00:00+08:00', ''])('a malformed decision date %p throws', (date) => {
    expect(() => decideEligibility(generalPerson(NEED), 'general', D, date, POLICY)).toThrow(InvalidEligibilityInput);
  });

  test('a leap day is a valid decision date', () => {
    expect(codes(generalPerson(0, { uiContributions: contributions(D, monthsBack('2028-02', NEED)) }), 'general', D, '2028-02-29')).toEqual([]);
  });

  test('an unknown voucher kind throws', () => {
    expect(() => decideEligibility(person(), 'special' as 'general', D, DATE, POLICY)).toThrow(InvalidEligibilityInput);
  });

  test('the decision does not mutate its input and repeats exactly', () => {
    const p = generalPerson(NEED, { priorityGroups: ['urban_dibao', 'urban_dibao'] });
    const snapshot = structuredClone(p);
    const deepFreeze = <T>(o: T): T => {
      if (o && typeof o === 'object') {
        Object.values(o).forEach(deepFreeze);
        Object.freeze(o);
      }
      return o;
    };
    const a = decideEligibility(deepFreeze(p), 'general', D, DATE, POLICY);
    expect(decideEligibility(p, 'general', D, DATE, POLICY)).toEqual(a);
    expect(p).toEqual(snapshot);
  });
});
