/**
 * Principals' scope held by the database (migration 012): a new or changed principal without its
 * scope is refused by PostgreSQL itself, and a database that already holds such a row (a deployment
 * older than the migration) migrates without failing; the API answers that row 403 FORBIDDEN_SCOPE
 * on every route, and it can still be revoked.
 */
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import { createPrincipal, hashKey } from '../api/auth';
import { createDb, type Db } from '../db/connection';
import { MIGRATION_SOURCE, migrateLatest } from '../db/migrate';
import { createDatabase, dropDatabase } from '../lib/postgres';
import { bearer, testApp } from './helpers/api';

const server = process.env.TEST_DATABASE_URL!;
const name = `${new URL(server).pathname.slice(1)}_principal_scope`.slice(0, 63);
let db: Db;
let client: Client;
const LEGACY_KEY = 'vk_legacy-hr_0123456789abcdefghijklmnopqrstuv';
const LEGACY_INSTITUTION_KEY = 'vk_legacy-inst_0123456789abcdefghijklmnopqrst';

beforeAll(async () => {
  db = createDb(await createDatabase(server, name), { max: 5 });
  // The database as a deployment of 011 has it, holding an HR key edited by hand to have no district.
  for (let i = 0; i < 11; i++) await db.migrate.up({ migrationSource: MIGRATION_SOURCE });
  expect((await db.migrate.currentVersion({ migrationSource: MIGRATION_SOURCE })).toString()).toBe('011');
  await db('principals').insert({ id: 'legacy-hr', key_hash: hashKey(LEGACY_KEY), role: 'hr', district: null });
  await db('principals').insert({ id: 'legacy-inst', key_hash: hashKey(LEGACY_INSTITUTION_KEY), role: 'institution', institution_id: null });
  await migrateLatest(db);
  // These routes answer from PostgreSQL alone; no Temporal server is needed (nothing listens here).
  client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', interceptors: [] }) });
});

afterAll(async () => {
  await db?.destroy();
  await dropDatabase(server, name);
});

test('a principal stored without its scope before the migration stays, and gets 403 FORBIDDEN_SCOPE on every route; it can be revoked', async () => {
  expect(await db('principals').where({ id: 'legacy-hr' }).first()).toMatchObject({ role: 'hr', district: null });
  const app = testApp(db, client, 'unused');
  const answers = await Promise.all(
    ['/v1/vouchers', '/v1/budgets', '/v1/budget-queue', '/v1/clawbacks', '/v1/settlement-batches', '/v1/fund-performance?year=2041', '/v1/statistics?from=2041-01-01&to=2041-12-31', '/v1/spot-checks'].map((path) =>
      request(app).get(path).set(bearer(LEGACY_KEY)),
    ),
  );
  expect(answers.map((r) => [r.status, r.body.code])).toEqual(Array.from({ length: 8 }, () => [403, 'FORBIDDEN_SCOPE']));
  expect(await db('principals').where({ id: 'legacy-hr' }).update({ revoked_at: db.fn.now() })).toBe(1);
  expect((await request(app).get('/v1/budgets').set(bearer(LEGACY_KEY))).status).toBe(401);
});

test('an institution key stored without its institution gets 403 FORBIDDEN_SCOPE from the institution routes, and nothing is written', async () => {
  const app = testApp(db, client, 'unused');
  const lists = async () => Number((await db('trainee_lists').count<{ n: string }[]>({ n: '*' }))[0]!.n);
  const before = await lists();
  const answers = await Promise.all([
    request(app).post('/v1/trainee-lists').set(bearer(LEGACY_INSTITUTION_KEY)).send({ listId: 'L1', district: '330602', occupationCode: 'X', rows: [] }),
    request(app).post('/v1/vouchers/SX3306022041000001/enrol').set(bearer(LEGACY_INSTITUTION_KEY)).send({ classId: 'C1', review: { passed: true } }),
  ]);
  expect(answers.map((r) => [r.status, r.body.code])).toEqual([
    [403, 'FORBIDDEN_SCOPE'],
    [403, 'FORBIDDEN_SCOPE'],
  ]);
  expect(await lists()).toBe(before);
});

test('PostgreSQL refuses a new principal without its scope, and taking the scope off one in use', async () => {
  const refused = { code: '23514', constraint: 'principal_scoped' };
  for (const row of [
    { id: 'x-hr', key_hash: 'h1', role: 'hr' },
    { id: 'x-inst', key_hash: 'h2', role: 'institution' },
    { id: 'x-holder', key_hash: 'h3', role: 'holder' },
  ]) {
    await expect(db('principals').insert(row)).rejects.toMatchObject(refused);
  }
  const { principal } = await createPrincipal(db, { role: 'hr', district: '330602' });
  await expect(db('principals').where({ id: principal.id }).update({ district: null })).rejects.toMatchObject(refused);
  expect(await db('principals').where({ id: principal.id }).first()).toMatchObject({ district: '330602' });
  // Roles without a scope of their own, and finance for the whole city, are stored as before.
  for (const role of ['operator', 'assessor', 'finance'] as const) await createPrincipal(db, { role });
  expect(await db('principals').whereIn('role', ['operator', 'assessor', 'finance'])).toHaveLength(3);
});
