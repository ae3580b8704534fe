/**
 * The one table of who sees personal data in full (api/disclosure.ts), checked against what the
 * issue asks: ID numbers and accounts masked to the last 4 unless the role needs the full value;
 * finance (which pays) is the only role that sees accounts and names in full; nobody sees ID numbers or
 * phones in full over the API.
 */
import type { Role } from '../api/auth';
import { disclose, FULL_VALUE_ROLES, seesInFull } from '../api/disclosure';

const ROLES: Role[] = ['hr', 'institution', 'holder', 'finance', 'assessor', 'operator'];

test('masked forms: ID number, phone and account keep the last 4; a name keeps its first character', () => {
  const hr = { role: 'hr' as const };
  expect(disclose(hr, 'idNumber', '33060219900101001X')).toBe('**************001X');
  expect(disclose(hr, 'phone', '13812345678')).toBe('*******5678');
  expect(disclose(hr, 'account', '6222020200001234')).toBe('************1234');
  expect(disclose(hr, 'name', '张三丰')).toBe('张**');
  expect(disclose(hr, 'account', null)).toBeNull();
});

test('who sees what in full: finance sees accounts and names (it pays); no role sees ID numbers or phones', () => {
  const full = Object.fromEntries(ROLES.map((r) => [r, (['idNumber', 'name', 'phone', 'account'] as const).filter((f) => seesInFull({ role: r }, f))]));
  expect(full).toEqual({ hr: [], institution: [], holder: [], finance: ['name', 'account'], assessor: [], operator: [] });
  expect(disclose({ role: 'finance' }, 'account', '6222020200001234')).toBe('6222020200001234');
  expect(disclose({ role: 'operator' }, 'account', '6222020200001234')).toBe('************1234');
  expect(FULL_VALUE_ROLES.idNumber).toEqual([]);
});
