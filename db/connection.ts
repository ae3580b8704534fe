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

export function createDb(connectionString: string, pool: { min?: number; max?: number } = {}): Db {
  return knex({
    client: 'pg',
    connection: connectionString,
    pool: { min: pool.min ?? 0, max: pool.max ?? 10 },
  });
}
