/**
 * Demo data for `npm start` on an empty database: one approved institution with a class, catalogue
 * entries, a registered person, and one API key per role (written to .data/dev-keys.json, git-ignored).
 * Idempotent: runs only when no principal exists yet.
 */
import type { Db } from '../connection';
import { createPrincipal, type Role } from '../../api/auth';
import type { Pii } from '../../lib/pii';
import { DISTRICT_CODES } from '../../policy/districts';
import { POLICY_VERSIONS } from '../../policy/policy';

export const DEMO_ID_NUMBER = '33060219900101001X';

export async function seedDev(db: Db, pii: Pii, firstSessionAt: number): Promise<Record<string, string> | null> {
  const existing = await db('principals').first();
  if (existing) return null;
  const personRef = pii.personRef(DEMO_ID_NUMBER);
  await db('persons')
    .insert({
      person_ref: personRef,
      id_number_enc: pii.encrypt(DEMO_ID_NUMBER),
      id_number_last4: DEMO_ID_NUMBER.slice(-4),
      name_enc: pii.encrypt('演示学员'),
      phone_enc: pii.encrypt('13800000000'),
      ui_district: '330602',
      employment_district: '330602',
      bank_account_enc: pii.encrypt('6222000000000000'),
    })
    .onConflict('person_ref')
    .ignore();
  // Enough months of UI contributions in 越城区 for a general voucher there (R2.3), ending this month.
  const months = POLICY_VERSIONS[POLICY_VERSIONS.length - 1]!.generalVoucherMinUiMonthsInDistrict;
  const today = new Date(firstSessionAt);
  const contributions = Array.from({ length: months }, (_, k) => {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - k - 1, 1));
    return { person_ref: personRef, district: '330602', month: `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}` };
  });
  await db('ui_contributions').insert(contributions).onConflict().ignore();
  await db('institutions').insert({ id: 'INST-DEMO', name: '演示职业技能培训学校', district: '330602', status: 'approved' }).onConflict('id').ignore();
  await db('classes')
    .insert({ id: 'CLS-DEMO', institution_id: 'INST-DEMO', occupation_code: '4-03-02-01', level: '4', training_kind: 'certificate', mode: 'offline', capacity: 40, venue_lat: 30.0, venue_lng: 120.58 })
    .onConflict('id')
    .ignore();
  for (let k = 0; k < 20; k++) {
    const start = firstSessionAt + k * 86_400_000;
    await db('class_sessions')
      .insert({ class_id: 'CLS-DEMO', session_id: `S${String(k + 1).padStart(2, '0')}`, starts_at: new Date(start).toISOString(), ends_at: new Date(start + 90 * 60_000).toISOString(), minutes: 90 })
      .onConflict(['class_id', 'session_id'])
      .ignore();
  }
  await db('subsidy_catalogue').insert({ occupation_code: '4-03-02-01', level: '4', training_kind: 'certificate', amount_fen: 150000, funding_source: 'skills_upgrading_account', valid_from: '2021-07-01' });
  const keys: Record<string, string> = {};
  const add = async (label: string, role: Role, scope: { district?: string; institutionId?: string; personRef?: string }) => {
    keys[label] = (await createPrincipal(db, { role, ...scope, label })).key;
  };
  await add('operator', 'operator', {});
  for (const d of DISTRICT_CODES) await add(`hr-${d}`, 'hr', { district: d });
  await add('finance-city', 'finance', {});
  await add('institution-INST-DEMO', 'institution', { institutionId: 'INST-DEMO' });
  await add(`holder-demo`, 'holder', { personRef });
  await add('assessor', 'assessor', {});
  return keys;
}
