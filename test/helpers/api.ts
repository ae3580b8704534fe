import request from 'supertest';
import type { Client } from '@temporalio/client';
import { createApp } from '../../api/app';
import { createPrincipal, type Role } from '../../api/auth';
import type { Db } from '../../db/connection';
import { createLogger } from '../../lib/logger';
import { testPii } from './env';

export function testApp(db: Db, client: Client, taskQueue: string, now?: () => number) {
  return createApp({ db, client, pii: testPii, logger: createLogger('silent'), taskQueue, now });
}

export async function keyFor(db: Db, role: Role, scope: { district?: string; institutionId?: string; personRef?: string } = {}): Promise<string> {
  return (await createPrincipal(db, { role, ...scope })).key;
}

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/**
 * R2.7: the holder obtains an issued voucher through a channel after real-name verification (the
 * step between issue and activation for every voucher HR issues). Returns the API's answer.
 */
export async function claimVoucher(
  app: Parameters<typeof request>[0],
  voucherNo: string,
  person: { idNumber: string; name: string; phone: string },
  holderKey: string,
  channel = 'zlb',
) {
  const r = await request(app)
    .post(`/v1/vouchers/${voucherNo}/claim`)
    .set(bearer(holderKey))
    .send({ channel, name: person.name, idNumber: person.idNumber, phone: person.phone });
  if (r.status !== 201 && r.status !== 200) throw new Error(`claim of ${voucherNo} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r;
}

/**
 * An institution registered by an operator and approved by the district's HR bureau through the API,
 * with an API key of its own.
 */
export async function approvedInstitutionViaApi(
  app: Parameters<typeof request>[0],
  db: Db,
  keys: { operator: string; hr: string },
  o: { name: string; district?: string },
): Promise<{ id: string; key: string }> {
  const reg = await request(app).post('/v1/institutions').set(bearer(keys.operator)).send({ name: o.name, district: o.district ?? '330602' });
  if (reg.status !== 201) throw new Error(`institution registration answered ${reg.status}: ${JSON.stringify(reg.body)}`);
  const ok = await request(app).post(`/v1/institutions/${reg.body.id}/approve`).set(bearer(keys.hr)).send({});
  if (ok.status !== 200) throw new Error(`institution approval answered ${ok.status}: ${JSON.stringify(ok.body)}`);
  return { id: reg.body.id, key: await keyFor(db, 'institution', { institutionId: reg.body.id }) };
}
