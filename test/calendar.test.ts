/**
 * The pure calendar against an independent oracle (luxon with the IANA database), over random instants
 * and month counts, plus the month-end cases by hand.
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { addCalendarMonths, localDate, localIso, localYear, parseLocal } from '../policy/calendar';
import { POLICY_VERSIONS } from '../policy/policy';

const ZONE = POLICY_VERSIONS[0]!.timeZone;
const instant = fc.integer({ min: Date.UTC(1992, 0, 1), max: Date.UTC(2100, 0, 1) });

describe('calendar in Asia/Shanghai', () => {
  test('R3.1 R3.2: adding calendar months agrees with the IANA-zone oracle (luxon) for any instant and month count', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 0, max: 36 }), (ms, months) => {
        const oracle = DateTime.fromMillis(ms, { zone: ZONE }).plus({ months }).toMillis();
        expect(addCalendarMonths(ms, months, ZONE)).toBe(oracle);
      }),
      { numRuns: 2000 },
    );
  });

  test('local date, year and ISO agree with the oracle', () => {
    fc.assert(
      fc.property(instant, (ms) => {
        const dt = DateTime.fromMillis(ms, { zone: ZONE });
        expect(localDate(ms, ZONE)).toBe(dt.toISODate());
        expect(localYear(ms, ZONE)).toBe(dt.year);
        expect(localIso(ms, ZONE)).toBe(dt.toISO());
        expect(parseLocal(localIso(ms, ZONE), ZONE)).toBe(ms);
      }),
      { numRuns: 2000 },
    );
  });

  test.each([
    ['2025-01-31T10:00:00', 1, '2025-02-28T10:00:00.000+08:00'],
    ['2024-01-31T10:00:00', 1, '2024-02-29T10:00:00.000+08:00'],
    ['2025-11-30T23:59:59', 3, '2026-02-28T23:59:59.000+08:00'],
    ['2027-08-31T00:00:00', 6, '2028-02-29T00:00:00.000+08:00'],
    ['2026-12-31T08:00:00', 6, '2027-06-30T08:00:00.000+08:00'],
    ['2026-10-31T00:30:00', 3, '2027-01-31T00:30:00.000+08:00'],
  ])('R3.1 R3.2 month end: %s + %i months = %s', (start, months, expected) => {
    expect(localIso(addCalendarMonths(parseLocal(start, ZONE), months, ZONE), ZONE)).toBe(expected);
  });

  test('the local year turns at midnight Shanghai time, not UTC (R3.4 quota year)', () => {
    expect(localYear(Date.parse('2026-12-31T16:00:00Z'), ZONE)).toBe(2027);
    expect(localYear(Date.parse('2026-12-31T15:59:59Z'), ZONE)).toBe(2026);
  });

  test('an unknown zone and malformed dates are refused', () => {
    expect(() => addCalendarMonths(0, 1, 'Europe/Paris')).toThrow(/unsupported time zone/);
    expect(() => parseLocal('2026-02-30', ZONE)).toThrow(/invalid/);
    expect(() => parseLocal('yesterday', ZONE)).toThrow(/invalid/);
  });
});
