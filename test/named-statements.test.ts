/**
 * db/named-statements.ts against PostgreSQL: a hot knex query runs as a named statement, prepared once
 * per connection, and a name never stands for two texts.
 */
import { createDb, type Db } from '../db/connection';
import { named, statementName } from '../db/named-statements';

let db: Db;
const table = `named_stmt_${process.pid}`;

beforeAll(async () => {
  // One connection, so the statements this test prepares are visible to its own pg_prepared_statements.
  db = createDb(process.env.TEST_DATABASE_URL!, { max: 1 });
  await db.schema.createTable(table, (t) => {
    t.text('k').primary();
    t.integer('revision').notNullable();
  });
});

afterAll(async () => {
  await db.schema.dropTableIfExists(table);
  await db.destroy();
});

const upsert = (k: string, revision: number) =>
  db(table).insert({ k, revision }).onConflict('k').merge().where(`${table}.revision`, '<', revision);

test('a query run through named() is prepared once on its connection and reused', async () => {
  await named('test_upsert', upsert('a', 1));
  await named('test_upsert', upsert('a', 2));
  await named('test_upsert', upsert('a', 1)); // older: the merge's condition keeps revision 2
  expect((await db(table).where({ k: 'a' }).first()).revision).toBe(2);
  const prepared = (await db.raw(`SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'test_upsert%'`)).rows as { name: string; statement: string }[];
  expect(prepared).toHaveLength(1);
  expect(prepared[0]!.statement).toContain(`insert into "${table}"`);
});

test('another text gets another name; the same text keeps its name', () => {
  const a = statementName('test_names', 'select 1 /* a */');
  const b = statementName('test_names', 'select 1 /* b */');
  expect(a).toBeDefined();
  expect(b).toBeDefined();
  expect(a).not.toBe(b);
  expect(statementName('test_names', 'select 1 /* a */')).toBe(a);
});

test('a builder whose text varies without bound stops being named instead of growing the map', () => {
  const names = Array.from({ length: 100 }, (_, i) => statementName('test_bound', `select ${i}`));
  expect(names.filter((n) => n === undefined).length).toBeGreaterThan(0);
  expect(new Set(names.filter(Boolean)).size).toBeLessThanOrEqual(64);
});
