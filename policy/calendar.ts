/**
 * Calendar arithmetic in the policy's time zone. Pure and deterministic (safe inside workflows): every
 * function takes the instant it works on; none reads the clock.
 */
import { DateTime } from 'luxon';

function at(ms: number, zone: string): DateTime {
  const dt = DateTime.fromMillis(ms, { zone });
  if (!dt.isValid) throw new Error(`invalid instant or zone: ${ms} ${zone}`);
  return dt;
}

/**
 * Adds calendar months in `zone`, keeping the local wall-clock time; a day that does not exist in the
 * target month clamps to its last day (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year).
 */
export function addCalendarMonths(ms: number, months: number, zone: string): number {
  return at(ms, zone).plus({ months }).toMillis();
}

/** Subtracts whole local calendar days in `zone`. */
export function minusCalendarDays(ms: number, days: number, zone: string): number {
  return at(ms, zone).minus({ days }).toMillis();
}

/** The local calendar year of an instant in `zone`. */
export function localYear(ms: number, zone: string): number {
  return at(ms, zone).year;
}

/** The local date (`YYYY-MM-DD`) of an instant in `zone`. */
export function localDate(ms: number, zone: string): string {
  return at(ms, zone).toISODate() as string;
}

/** ISO-8601 with the zone's offset, for people reading deadlines (e.g. `2026-03-31T10:00:00.000+08:00`). */
export function localIso(ms: number, zone: string): string {
  return at(ms, zone).toISO() as string;
}

/** Parses an ISO-8601 string; a string without an offset is read as local time in `zone`. */
export function parseLocal(iso: string, zone: string): number {
  const dt = DateTime.fromISO(iso, { zone, setZone: false });
  if (!dt.isValid) throw new Error(`invalid date-time: ${iso}`);
  return dt.toMillis();
}
