/**
 * Which role sees which personal data in full (issue 6, PIPL): one table for the whole API. Every
 * response that carries an ID number, name, phone or bank account passes it through `disclose`; a
 * role not listed for a kind gets the masked form (ID number, phone and account: last 4 only; name:
 * first character). Logs never see these values at all (pino redact, lib/logger.ts).
 */
import { maskName, maskTail } from '../lib/pii';
import type { Principal, Role } from './auth';

export type PersonalField = 'idNumber' | 'name' | 'phone' | 'account';

/**
 * Roles that need the full value for their work. Finance pays: it needs payees' names and accounts in
 * full (the disbursement table it sends to the bank, R3.13). No role needs a full ID number or phone
 * over the API: HR matches people by the keyed reference, holders prove their identity by sending it.
 */
export const FULL_VALUE_ROLES: Readonly<Record<PersonalField, readonly Role[]>> = Object.freeze({
  idNumber: [],
  name: ['finance'],
  phone: [],
  account: ['finance'],
});

export function seesInFull(p: Pick<Principal, 'role'>, field: PersonalField): boolean {
  return FULL_VALUE_ROLES[field].includes(p.role);
}

/** The value as `p` may see it: in full, or masked. */
export function disclose(p: Pick<Principal, 'role'>, field: PersonalField, value: string): string;
export function disclose(p: Pick<Principal, 'role'>, field: PersonalField, value: string | null): string | null;
export function disclose(p: Pick<Principal, 'role'>, field: PersonalField, value: string | null): string | null {
  if (value === null) return null;
  if (seesInFull(p, field)) return value;
  return field === 'name' ? maskName(value) : maskTail(value);
}
