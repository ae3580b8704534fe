import knex, { type Knex } from 'knex';
import { types } from 'pg';

export type Db = Knex;

// int8 (money totals in fen, counters) as JS numbers: exact below 2^53 fen, far above any budget here.
types.setTypeParser(20, (v) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`int8 out of safe range: ${v}`);
  return n;
});
// numeric (rates) as numbers.
types.setTypeParser(1700, (v) => Number(v));

export interface DbOptions {
  min?: number;
  max?: number;
  /** How long a query waits for a pooled connection before failing (knex default 60 s). */
  acquireTimeoutMs?: number;
  /** How long opening a connection may take (node-postgres default: no limit). */
  connectTimeoutMs?: number;
  /** How long an idle pooled connection is kept before it is closed (tarn default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * The API passes short timeouts (API_DB_OPTIONS) so that a database that is down or hanging answers
 * 503 within seconds instead of holding requests for a minute; workers keep the defaults (their
 * activities retry anyway).
 */
export function createDb(connectionString: string, pool: DbOptions = {}): Db {
  return knex({
    client: 'pg',
    connection: pool.connectTimeoutMs ? { connectionString, connectionTimeoutMillis: pool.connectTimeoutMs } : connectionString,
    pool: { min: pool.min ?? 0, max: pool.max ?? 10, ...(pool.idleTimeoutMs ? { idleTimeoutMillis: pool.idleTimeoutMs } : {}) },
    ...(pool.acquireTimeoutMs ? { acquireConnectionTimeout: pool.acquireTimeoutMs } : {}),
  });
}

/** Idle API connections are kept 10 minutes, so a burst after a quiet spell (classes starting) does not reconnect 30 backends at once. */
const IDLE_MS = 10 * 60_000;

/**
 * The API's pool: fail fast when PostgreSQL is unavailable (api/unavailable.ts maps it to 503), and 30
 * connections per API process — with knex's default 10, 200 concurrent check-ins queued for a connection
 * for longer than the signal itself took (docs/PERFORMANCE.md figure 3). Size PostgreSQL's
 * max_connections for 30 per API replica (docs/SCALING.md).
 */
export const API_DB_OPTIONS: DbOptions = { max: 30, acquireTimeoutMs: 10_000, connectTimeoutMs: 5_000, idleTimeoutMs: IDLE_MS };
