/**
 * Properties of voucher eligibility over random people, districts and dates: the R2.3 month boundary,
 * the district-only count, the R1.2 exclusion, the R2.4 links and the R2.4 Reading on priority groups.
 * The month threshold comes from the policy object.
 */
import fc from 'fast-check';
import { decideEligibility, PRIORITY_GROUP_CODES, type PersonRecord } from '../eligibility/engine';
import { DISTRICT_CODES } from '../policy/districts';
import { POLICY_VERSIONS, type PolicyParams } from '../policy/policy';

const POLICY: PolicyParams = POLICY_VERSIONS[0]!;
const NEED = POLICY.generalVoucherMinUiMonthsInDistrict;
const RUNS = { numRuns: 500 };

/** Codes outside Shaoxing: Hangzhou 西湖区, Beijing 东城区, Guiyang 南明区 (an east–west partner). */
const OUTSIDE_CODES = ['330106', '110101', '520102'];
const ANY_CODES = [...DISTRICT_CODES, ...OUTSIDE_CODES];

// Independent month arithmetic for the tests: an index counts months since year 0.
const monthOf = (index: number) => `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}`;
const indexOf = (ym: string) => Number(ym.slice(0, 4)) * 12 + Number(ym.slice(5, 7)) - 1;

/** A decision date (local `YYYY-MM-DD`) and its month index. */
const decisionDate = fc
  .record({ year: fc.integer({ min: 2021, max: 2040 }), month: fc.integer({ min: 1, max: 12 }), day: fc.integer({ min: 1, max: 28 }) })
  .map(({ year, month, day }) => ({
    date: `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
    now: year * 12 + month - 1,
  }));

const code = (pool: readonly string[]) => fc.constantFrom(...pool);
const nullableCode = (pool: readonly string[]) => fc.option(code(pool), { nil: null });

/** Contribution rows in `pool` districts, months from 15 years before to 2 years after `now`. */
const rowsIn = (pool: readonly string[], now: number, maxLength = 80) =>
  fc.array(fc.record({ district: code(pool), month: fc.integer({ min: now - 180, max: now + 24 }).map(monthOf) }), { maxLength });

/** Any well-formed person, with districts drawn from `pool`. */
const personIn = (pool: readonly string[], now: number): fc.Arbitrary<PersonRecord> =>
  fc.record({
    civilService: fc.boolean(),
    householdDistrict: nullableCode(pool),
    residencePermitDistrict: nullableCode(pool),
    employmentDistrict: nullableCode(pool),
    employmentStatus: fc.constantFrom('employed', 'self_employed', 'unemployed', null),
    uiContributions: rowsIn(pool, now),
    uiPayingNow: fc.option(fc.record({ district: code(pool) }), { nil: null }),
    unemploymentRegDistrict: nullableCode(pool),
    eastWestPartner: fc.boolean(),
    priorityGroups: fc.subarray(PRIORITY_GROUP_CODES),
  });

/** A case: decision date, issuing Shaoxing district, and a person. */
const anyCase = fc
  .tuple(decisionDate, code(DISTRICT_CODES))
  .chain(([d, district]) => personIn(ANY_CODES, d.now).map((person) => ({ ...d, district, person })));

const kind = fc.constantFrom('general' as const, 'directed' as const);

describe('R2.3 general voucher boundary (property)', () => {
  test('the policy asks for at least one month (the boundary properties rely on it)', () => {
    expect(NEED).toBeGreaterThan(0);
  });

  /**
   * A general-voucher candidate paying in `district` whose history there has exactly `need` distinct
   * months up to the decision month, plus noise: duplicates of those months, months after the
   * decision date in the district, and any rows in other districts.
   */
  const boundaryCase = (need: number) =>
    fc
      .tuple(decisionDate, code(DISTRICT_CODES))
      .chain(([d, district]) => {
        const others = ANY_CODES.filter((c) => c !== district);
        return fc.record({
          date: fc.constant(d.date),
          district: fc.constant(district),
          months: fc.uniqueArray(fc.integer({ min: d.now - 240, max: d.now }), { minLength: need, maxLength: need }).map((ms) => ms.map(monthOf)),
          duplicates: fc.array(fc.nat(), { maxLength: 10 }),
          future: fc.array(fc.integer({ min: d.now + 1, max: d.now + 24 }).map(monthOf), { maxLength: 10 }),
          elsewhere: rowsIn(others, d.now),
          person: personIn(ANY_CODES, d.now),
        });
      })
      .map((c) => {
        const inDistrict = (months: string[]) => months.map((month) => ({ district: c.district, month }));
        const build = (months: string[]): PersonRecord => ({
          ...c.person,
          civilService: false,
          uiPayingNow: { district: c.district },
          uiContributions: [
            ...inDistrict(months),
            ...inDistrict(months.length ? c.duplicates.map((i) => months[i % months.length]!) : []),
            ...inDistrict(c.future),
            ...c.elsewhere,
          ],
        });
        // The same history with one of the distinct months (every row of it) removed.
        const dropped = c.months[0];
        return { ...c, atNeed: build(c.months), belowNeed: build(c.months.filter((m) => m !== dropped)) };
      });

  test('R2.3: eligibility flips exactly between need-1 and need distinct months in the issuing district', () => {
    fc.assert(
      fc.property(boundaryCase(NEED), ({ date, district, atNeed, belowNeed }) => {
        expect(decideEligibility(atNeed, 'general', district, date, POLICY)).toEqual({ eligible: true, reasons: [], priorityGroups: atNeed.priorityGroups });
        const below = decideEligibility(belowNeed, 'general', district, date, POLICY);
        expect(below.eligible).toBe(false);
        expect(below.reasons).toEqual([expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', rule: 'R2.3', have: NEED - 1, need: NEED })]);
      }),
      RUNS,
    );
  });

  test('R2.3: the flip follows the policy parameter for any threshold', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 * NEED }).chain((need) => boundaryCase(need).map((c) => ({ need, ...c }))),
        ({ need, date, district, atNeed, belowNeed }) => {
          const policy = { ...POLICY, generalVoucherMinUiMonthsInDistrict: need };
          expect(decideEligibility(atNeed, 'general', district, date, policy).eligible).toBe(true);
          expect(decideEligibility(belowNeed, 'general', district, date, policy).reasons).toEqual([
            expect.objectContaining({ code: 'UI_MONTHS_IN_DISTRICT_BELOW_MIN', have: need - 1, need }),
          ]);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('R2.3: for any history, eligibility is exactly "paying here and at least need distinct months here up to now"', () => {
    fc.assert(
      fc.property(anyCase, ({ date, now, district, person }) => {
        const months = new Set(person.uiContributions.filter((c) => c.district === district && indexOf(c.month) <= now).map((c) => c.month));
        const paying = person.uiPayingNow
          ? person.uiPayingNow.district === district
          : person.uiContributions.some((c) => c.district === district && (indexOf(c.month) === now || indexOf(c.month) === now - 1));
        const d = decideEligibility(person, 'general', district, date, POLICY);
        expect(d.eligible).toBe(!person.civilService && paying && months.size >= NEED);
        const below = d.reasons.find((r) => r.code === 'UI_MONTHS_IN_DISTRICT_BELOW_MIN');
        expect(below?.have).toBe(months.size >= NEED ? undefined : months.size);
      }),
      RUNS,
    );
  });

  test('R2.3: contributions in other districts never change the general decision', () => {
    fc.assert(
      fc.property(
        anyCase.chain((c) => rowsIn(ANY_CODES.filter((x) => x !== c.district), c.now).map((extra) => ({ ...c, extra }))),
        ({ date, district, person, extra }) => {
          const more = { ...person, uiContributions: [...person.uiContributions, ...extra] };
          const fewer = { ...person, uiContributions: person.uiContributions.filter((r) => r.district === district) };
          const base = decideEligibility(person, 'general', district, date, POLICY);
          expect(decideEligibility(more, 'general', district, date, POLICY)).toEqual(base);
          expect(decideEligibility(fewer, 'general', district, date, POLICY)).toEqual(base);
        },
      ),
      RUNS,
    );
  });
});

describe('R1.2 civil-service exclusion (property)', () => {
  test('R1.2: establishment staff are refused for both kinds, whatever else is true, in any issuing district', () => {
    fc.assert(
      fc.property(anyCase, kind, code([...ANY_CODES, '330601']), ({ date, person }, k, district) => {
        const d = decideEligibility({ ...person, civilService: true }, k, district, date, POLICY);
        expect(d.eligible).toBe(false);
        expect(d.reasons[0]).toEqual(expect.objectContaining({ code: 'CIVIL_SERVICE_EXCLUDED', rule: 'R1.2' }));
      }),
      RUNS,
    );
  });

  test('R1.2: the exclusion adds exactly its own reason to the decision otherwise made', () => {
    fc.assert(
      fc.property(anyCase, kind, ({ date, district, person }, k) => {
        const outside = decideEligibility({ ...person, civilService: false }, k, district, date, POLICY);
        const inside = decideEligibility({ ...person, civilService: true }, k, district, date, POLICY);
        expect(inside.reasons.map((r) => r.code)).toEqual(['CIVIL_SERVICE_EXCLUDED', ...outside.reasons.map((r) => r.code)]);
      }),
      RUNS,
    );
  });
});

describe('R2.4 directed voucher links (property)', () => {
  /**
   * A person with no link to `district`: not civil service, not an east–west partner, every district
   * field elsewhere, and UI rows in the district only two months or more before the decision month
   * or after it (so the contributions cannot show current payment there).
   */
  const unlinkedCase = fc.tuple(decisionDate, code(DISTRICT_CODES)).chain(([d, district]) => {
    const others = ANY_CODES.filter((c) => c !== district);
    const staleOrFuture = fc.oneof(fc.integer({ min: d.now - 180, max: d.now - 2 }), fc.integer({ min: d.now + 1, max: d.now + 24 })).map(monthOf);
    return fc
      .record({
        base: personIn(others, d.now),
        stale: fc.array(staleOrFuture, { maxLength: 60 }),
      })
      .map(({ base, stale }) => ({
        ...d,
        district,
        person: {
          ...base,
          civilService: false,
          eastWestPartner: false,
          uiContributions: [...base.uiContributions, ...stale.map((month) => ({ district, month }))],
        } satisfies PersonRecord,
      }));
  });

  /** Each single link of R2.4, as a change to a person deciding in `district` at month index `now`. */
  const links: Record<string, (p: PersonRecord, district: string, now: number) => PersonRecord> = {
    'employed in the district': (p, district) => ({ ...p, employmentStatus: 'employed', employmentDistrict: district }),
    'self-employed in the district': (p, district) => ({ ...p, employmentStatus: 'self_employed', employmentDistrict: district }),
    'paying UI in the district (register)': (p, district) => ({ ...p, uiPayingNow: { district } }),
    'paying UI in the district (contribution in the decision month, no register entry)': (p, district, now) => ({
      ...p,
      uiPayingNow: null,
      uiContributions: [...p.uiContributions, { district, month: monthOf(now) }],
    }),
    'paying UI in the district (contribution the month before, no register entry)': (p, district, now) => ({
      ...p,
      uiPayingNow: null,
      uiContributions: [...p.uiContributions, { district, month: monthOf(now - 1) }],
    }),
    'unemployed with household registration in the district': (p, district) => ({ ...p, employmentStatus: 'unemployed', householdDistrict: district }),
    'unemployed with a residence permit in the district': (p, district) => ({ ...p, employmentStatus: 'unemployed', residencePermitDistrict: district }),
    'from an east–west partner area': (p) => ({ ...p, eastWestPartner: true }),
  };

  test('R2.4: a person with no link to the issuing district is refused with NO_LINK_TO_DISTRICT only', () => {
    fc.assert(
      fc.property(unlinkedCase, ({ date, district, person }) => {
        const d = decideEligibility(person, 'directed', district, date, POLICY);
        expect(d.eligible).toBe(false);
        expect(d.reasons).toEqual([expect.objectContaining({ code: 'NO_LINK_TO_DISTRICT', rule: 'R2.4' })]);
      }),
      RUNS,
    );
  });

  test('R2.4: adding any single link makes that person eligible', () => {
    fc.assert(
      fc.property(unlinkedCase, fc.constantFrom(...Object.keys(links)), ({ date, now, district, person }, link) => {
        const linked = links[link]!(person, district, now);
        expect(decideEligibility(linked, 'directed', district, date, POLICY)).toEqual({ eligible: true, reasons: [], priorityGroups: person.priorityGroups });
      }),
      RUNS,
    );
  });

  test('R2.4: a link to one district is not a link to another', () => {
    fc.assert(
      fc.property(unlinkedCase, fc.constantFrom(...Object.keys(links).filter((l) => !l.startsWith('from an east'))), ({ date, now, district, person }, link) => {
        const elsewhere = DISTRICT_CODES.find((c) => c !== district)!;
        const linkedElsewhere = links[link]!(person, elsewhere, now);
        expect(decideEligibility(linkedElsewhere, 'directed', district, date, POLICY).reasons).toEqual([expect.objectContaining({ code: 'NO_LINK_TO_DISTRICT' })]);
      }),
      RUNS,
    );
  });
});

describe('R2.4 Reading: priority groups (property)', () => {
  test('R2.4: priority groups never change eligibility or reasons, for either kind, and are recorded as given', () => {
    fc.assert(
      fc.property(anyCase, kind, fc.subarray(PRIORITY_GROUP_CODES), fc.subarray(PRIORITY_GROUP_CODES), ({ date, district, person }, k, a, b) => {
        const da = decideEligibility({ ...person, priorityGroups: a }, k, district, date, POLICY);
        const db = decideEligibility({ ...person, priorityGroups: b }, k, district, date, POLICY);
        expect(db.eligible).toBe(da.eligible);
        expect(db.reasons).toEqual(da.reasons);
        expect(da.priorityGroups).toEqual(a);
        expect(db.priorityGroups).toEqual(b);
      }),
      RUNS,
    );
  });
});
