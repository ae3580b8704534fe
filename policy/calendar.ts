/**
 * Calendar arithmetic in the policy's time zone. Pure and deterministic, with no library and no ICU
 * data, so it is safe inside workflows and replays identically on any Node version: every function
 * takes the instant it works on; none reads the clock.
 *
 * Zones are fixed-offset: Asia/Shanghai has kept UTC+08:00 without daylight saving since 1991, so
 * local fields are the UTC fields of the shifted instant. A zone not listed here is refused.
 */
const ZONE_OFFSET_MINUTES: Readonly<Record<string, number>> = Object.freeze({ 'Asia/Shanghai': 480 });

const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;

function offsetMs(zone: string): number {
  const o = ZONE_OFFSET_MINUTES[zone];
  if (o === undefined) throw new Error(`unsupported time zone: ${zone}`);
  return o * MS_PER_MINUTE;
}

function checkInstant(ms: number): void {
  if (!Number.isFinite(ms)) throw new Error(`invalid instant: ${ms}`);
}

/** Local calendar fields of an instant (month 1–12). */
export function localFields(ms: number, zone: string) {
  checkInstant(ms);
  const d = new Date(ms + offsetMs(zone));
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    millisecond: d.getUTCMilliseconds(),
  };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Adds calendar months in `zone`, keeping the local wall-clock time; a day that does not exist in the
 * target month clamps to its last day (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year).
 */
export function addCalendarMonths(ms: number, months: number, zone: string): number {
  if (!Number.isInteger(months)) throw new Error(`months must be an integer: ${months}`);
  const f = localFields(ms, zone);
  const index = f.year * 12 + (f.month - 1) + months;
  const year = Math.floor(index / 12);
  const month = (index % 12) + 1;
  const day = Math.min(f.day, daysInMonth(year, month));
  return Date.UTC(year, month - 1, day, f.hour, f.minute, f.second, f.millisecond) - offsetMs(zone);
}

/** Subtracts whole local calendar days in `zone` (exact in a fixed-offset zone). */
export function minusCalendarDays(ms: number, days: number, zone: string): number {
  offsetMs(zone);
  checkInstant(ms);
  return ms - days * MS_PER_DAY;
}

/** The local calendar year of an instant in `zone`. */
export function localYear(ms: number, zone: string): number {
  return localFields(ms, zone).year;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The local date (`YYYY-MM-DD`) of an instant in `zone`. */
export function localDate(ms: number, zone: string): string {
  const f = localFields(ms, zone);
  return `${pad(f.year, 4)}-${pad(f.month)}-${pad(f.day)}`;
}

/** ISO-8601 with the zone's offset, for people reading deadlines (e.g. `2026-03-31T10:00:00.000+08:00`). */
export function localIso(ms: number, zone: string): string {
  const f = localFields(ms, zone);
  const off = offsetMs(zone) / MS_PER_MINUTE;
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${localDate(ms, zone)}T${pad(f.hour)}:${pad(f.minute)}:${pad(f.second)}.${pad(f.millisecond, 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const LOCAL_ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;

/** Parses ISO-8601; a string without an offset (or a bare date) is read as local time in `zone`. */
export function parseLocal(iso: string, zone: string): number {
  const m = LOCAL_ISO.exec(iso);
  if (!m) {
    if (!/(Z|[+-]\d{2}:?\d{2})$/.test(iso)) throw new Error(`invalid date-time: ${iso}`);
    const t = Date.parse(iso);
    if (Number.isNaN(t)) throw new Error(`invalid date-time: ${iso}`);
    return t;
  }
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '0'] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw new Error(`invalid date-time: ${iso}`);
  }
  return Date.UTC(year, month - 1, day, Number(h), Number(mi), Number(s), Number(frac.padEnd(3, '0'))) - offsetMs(zone);
}
