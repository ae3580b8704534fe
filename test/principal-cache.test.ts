/**
 * The API's cache of authenticated principals (api/principal-cache.ts): known keys skip the database
 * lookup, yet a revocation, a key rotation or a hand edit of `principals` takes effect on the next
 * request, because PostgreSQL announces each change (migration 010) to every listening API process.
 * Without a listening connection nothing is cached. Real PostgreSQL; Temporal is not involved in
 * authentication (a stub client).
 */
import request from 'supertest';
import type { Express } from 'express';
import { createApp } from '../api/app';
import { createPrincipal, revokePrincipal, rotateKey } from '../api/auth';
import { PrincipalCache } from '../api/principal-cache';
import { createDb, type Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { bearer } from './helpers/api';
import { testDb, testPii } from './helpers/env';

let db: Db;
const caches: PrincipalCache[] = [];
const dbs: Db[] = [];

beforeAll(() => {
  db = testDb();
});
afterAll(async () => {
  for (const c of caches) await c.stop();
  for (const d of dbs) await d.destroy();
  await db?.destroy();
});

/** An API process of its own: its own pool, its own cache; counts its lookups of `principals`. */
async function apiProcess(o: { ttlMs?: number } = {}) {
  const own = createDb(process.env.TEST_DATABASE_URL!);
  dbs.push(own);
  let lookups = 0;
  own.on('query', (q: { sql: string }) => {
    if (/from "principals"/.test(q.sql)) lookups++;
  });
  const cache = new PrincipalCache(own, undefined, { ttlMs: o.ttlMs, reconnectMs: 100 });
  caches.push(cache);
  await cache.start();
  const app: Express = createApp({ db: own, client: {} as never, pii: testPii, logger: createLogger('silent'), principalCache: cache });
  return { app, cache, lookups: () => lookups };
}

const list = (app: Express, key: string) => request(app).get('/v1/vouchers').set(bearer(key));

/** Until `f` holds (the NOTIFY is delivered asynchronously, at commit), at most 5 s. */
async function eventually(f: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition never held');
}

test('a known key is looked up once, then served from the cache', async () => {
  const api = await apiProcess();
  expect(api.cache.active).toBe(true);
  const { key } = await createPrincipal(db, { role: 'hr', district: '330602' });
  for (let i = 0; i < 5; i++) expect((await list(api.app, key)).status).toBe(200);
  expect(api.lookups()).toBe(1);
  // Unknown keys are never cached: each one is looked up (and refused).
  for (let i = 0; i < 3; i++) expect((await list(api.app, 'vk_nobody_x')).status).toBe(401);
  expect(api.lookups()).toBe(4);
});

test('a revocation reaches every API process: the next request of the revoked key is refused (401)', async () => {
  const [a, b] = [await apiProcess(), await apiProcess()];
  const { principal, key } = await createPrincipal(db, { role: 'finance' });
  expect((await list(a.app, key)).status).toBe(200);
  expect((await list(b.app, key)).status).toBe(200);
  await revokePrincipal(db, principal.id);
  await eventually(async () => (await list(a.app, key)).status === 401);
  await eventually(async () => (await list(b.app, key)).status === 401);
  // And it stays refused.
  for (const api of [a, b]) expect((await list(api.app, key)).body.code).toBe('UNAUTHENTICATED');
});

test('a rotated key stops working and the new one works; a hand edit in psql is heard too', async () => {
  const api = await apiProcess();
  const { principal, key } = await createPrincipal(db, { role: 'operator' });
  expect((await list(api.app, key)).status).toBe(200);
  const fresh = await rotateKey(db, principal.id);
  await eventually(async () => (await list(api.app, key)).status === 401);
  expect((await list(api.app, fresh)).status).toBe(200);

  const other = await createPrincipal(db, { role: 'operator' });
  expect((await list(api.app, other.key)).status).toBe(200);
  await db.raw('UPDATE principals SET revoked_at = now() WHERE id = ?', [other.principal.id]);
  await eventually(async () => (await list(api.app, other.key)).status === 401);
});

test('without its LISTEN connection the cache keeps nothing (every request is looked up) until it listens again', async () => {
  const api = await apiProcess();
  const { key } = await createPrincipal(db, { role: 'operator' });
  expect((await list(api.app, key)).status).toBe(200);
  const before = api.lookups();
  // Cut the listening backend, as a PostgreSQL restart or a network fault would.
  const cut = await db.raw(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query = 'LISTEN principals_changed' AND datname = current_database()`);
  expect(cut.rows.length).toBeGreaterThanOrEqual(1);
  await eventually(async () => !api.cache.active);
  // A change made while nobody listens cannot be missed: nothing is served from the cache meanwhile.
  const served = await list(api.app, key);
  expect(served.status).toBe(200);
  expect(api.lookups()).toBeGreaterThan(before);
  await eventually(async () => api.cache.active);
  const again = api.lookups();
  await list(api.app, key);
  await list(api.app, key);
  expect(api.lookups()).toBe(again + 1);
});

test('a lookup in flight when a change is announced is not cached; entries expire after their TTL', async () => {
  let now = 1_000_000;
  const own = createDb(process.env.TEST_DATABASE_URL!);
  dbs.push(own);
  const cache = new PrincipalCache(own, undefined, { ttlMs: 60_000, now: () => now });
  caches.push(cache);
  await cache.start();
  const p = { id: 'hr-x', role: 'hr' as const, district: '330602', institutionId: null, personRef: null };
  const ticket = cache.ticket();
  cache.invalidate('someone-else'); // announced while the lookup ran
  cache.set('h1', p, ticket);
  expect(cache.get('h1')).toBeUndefined();
  cache.set('h1', p, cache.ticket());
  expect(cache.get('h1')).toEqual(p);
  now += 60_000;
  expect(cache.get('h1')).toBeUndefined();
});
