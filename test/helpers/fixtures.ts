/** Test data built through the same tables production uses; every identifier is unique per call. */
import type { Db } from '../../db/connection';
import type { Pii } from '../../lib/pii';
import { POLICY_VERSIONS } from '../../policy/policy';

let seq = 0;
export function uid(prefix: string): string {
  seq += 1;
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${seq}${Math.random().toString(36).slice(2, 6)}`;
}

/** A valid 18-character resident ID (GB 11643 check digit computed), unique per call. */
export function makeResidentId(birth = '19900101'): string {
  const area = '330602';
  const serial = String(Math.floor(Math.random() * 1000)).padStart(3, '0');
  const body = `${area}${birth}${serial}`;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * weights[i]!;
  return body + '10X98765432'[sum % 11];
}

export interface PersonFixture {
  idNumber: string;
  name: string;
  phone: string;
  bankAccount: string;
  personRef: string;
}

export async function makePerson(
  db: Db,
  pii: Pii,
  o: Partial<{
    uiDistrict: string | null;
    employmentDistrict: string | null;
    householdDistrict: string | null;
    residenceDistrict: string | null;
    unemploymentRegDistrict: string | null;
    civilService: boolean;
    /** East–west partner-area person: eligible for a directed voucher in any district (R2.4). Default true. */
    eastWestPartner: boolean;
    /** Months of UI contributions in the UI district up to this month (default: the policy minimum, R2.3). */
    uiMonths: number;
  }> = {},
): Promise<PersonFixture> {
  let idNumber = makeResidentId();
  let personRef = pii.personRef(idNumber);
  // Random serials can collide across a large run; draw again.
  while (await db('persons').where({ person_ref: personRef }).first()) {
    idNumber = makeResidentId(`19${String(10 + Math.floor(Math.random() * 89))}0101`);
    personRef = pii.personRef(idNumber);
  }
  let p = { idNumber, name: '测试' + uid('').slice(-4), phone: '138' + String(Math.floor(Math.random() * 1e8)).padStart(8, '0'), bankAccount: '6222' + String(Math.floor(Math.random() * 1e12)).padStart(12, '0'), personRef };
  // Concurrent callers can draw the same serial between the check above and the insert: draw again.
  for (;;) {
    const inserted = await db('persons').insert({
      person_ref: personRef,
      id_number_enc: pii.encrypt(idNumber),
      id_number_last4: idNumber.slice(-4),
      name_enc: pii.encrypt(p.name),
      phone_enc: pii.encrypt(p.phone),
      bank_account_enc: pii.encrypt(p.bankAccount),
      ui_district: o.uiDistrict === undefined ? '330602' : o.uiDistrict,
      employment_district: o.employmentDistrict ?? null,
      household_district: o.householdDistrict ?? null,
      residence_district: o.residenceDistrict ?? null,
      unemployment_reg_district: o.unemploymentRegDistrict ?? null,
      civil_service: o.civilService ?? false,
      east_west_partner: o.eastWestPartner ?? true,
    }).onConflict('person_ref').ignore().returning('person_ref');
    if (inserted.length > 0) break;
    idNumber = makeResidentId(`19${String(10 + Math.floor(Math.random() * 89))}0101`);
    personRef = pii.personRef(idNumber);
    p = { ...p, idNumber, personRef };
  }
  // A UI history that makes the person eligible for a general voucher of their UI district (R2.3).
  const uiDistrict = o.uiDistrict === undefined ? '330602' : o.uiDistrict;
  const months = o.uiMonths ?? POLICY_VERSIONS[0]!.generalVoucherMinUiMonthsInDistrict;
  if (uiDistrict && months > 0) {
    const now = new Date(Date.now() + 8 * 3_600_000);
    const rows = Array.from({ length: months }, (_, k) => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - k, 1));
      return { person_ref: personRef, district: uiDistrict, month: `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}` };
    });
    await db('ui_contributions').insert(rows).onConflict().ignore();
  }
  return p;
}

export async function makeInstitution(db: Db, status = 'approved', district = '330602'): Promise<string> {
  const id = uid('INST');
  await db('institutions').insert({ id, name: `Institution ${id}`, district, status });
  return id;
}

export interface ClassFixture {
  classId: string;
  institutionId: string;
  occupationCode: string;
  level: string;
  sessionIds: string[];
}

/** A class whose `sessions` sessions of `minutes` each start at `firstStart` and follow daily. */
export async function makeClass(
  db: Db,
  o: { institutionId: string; firstStart: number; sessions?: number; minutes?: number; occupationCode?: string; level?: string; capacity?: number; trainingKind?: string },
): Promise<ClassFixture> {
  const classId = uid('CLS');
  const occupationCode = o.occupationCode ?? '4-10-01-01';
  const level = o.level ?? '4';
  await db('classes').insert({
    id: classId,
    institution_id: o.institutionId,
    occupation_code: occupationCode,
    level,
    training_kind: o.trainingKind ?? 'certificate',
    mode: 'offline',
    capacity: o.capacity ?? 30,
    venue_lat: 30.0,
    venue_lng: 120.58,
  });
  const n = o.sessions ?? 20;
  const minutes = o.minutes ?? 90;
  const sessionIds: string[] = [];
  for (let k = 0; k < n; k++) {
    const sessionId = `S${String(k + 1).padStart(2, '0')}`;
    sessionIds.push(sessionId);
    const start = o.firstStart + k * 86_400_000;
    await db('class_sessions').insert({
      class_id: classId,
      session_id: sessionId,
      starts_at: new Date(start).toISOString(),
      ends_at: new Date(start + minutes * 60_000).toISOString(),
      minutes,
    });
  }
  return { classId, institutionId: o.institutionId, occupationCode, level, sessionIds };
}

export async function makeCatalogueEntry(
  db: Db,
  o: { occupationCode: string; level: string; trainingKind?: string; amountFen: number; fundingSource?: string; validFrom?: string; validTo?: string | null },
): Promise<void> {
  await db('subsidy_catalogue').insert({
    occupation_code: o.occupationCode,
    level: o.level,
    training_kind: o.trainingKind ?? 'certificate',
    amount_fen: o.amountFen,
    funding_source: o.fundingSource ?? 'skills_upgrading_account',
    valid_from: o.validFrom ?? '2020-01-01',
    valid_to: o.validTo ?? null,
  });
}

/** A fresh occupation code, so catalogue entries of parallel tests never meet. */
export function uniqueOccupation(): string {
  return `9-${uid('').slice(-8)}`;
}
