/**
 * Named (prepared) statements for hot queries built with knex: node-postgres prepares a named statement
 * once per pooled connection, so PostgreSQL parses and plans it once instead of on every call.
 *
 * A name must always mean the same text (node-postgres refuses a name reused with another text), so the
 * name is derived from the compiled SQL: one name per distinct text in this process. A builder whose
 * text varies without bound (it should not) stops being named after `MAX_NAMES` texts and runs as before.
 */
import type { Knex } from 'knex';

const MAX_NAMES = 64;
const names = new Map<string, string>();

/** The statement name for this SQL text, or undefined once the process has named `MAX_NAMES` texts. */
export function statementName(prefix: string, sql: string): string | undefined {
  let name = names.get(sql);
  if (name === undefined && names.size < MAX_NAMES) {
    name = `${prefix}_${names.size}`;
    names.set(sql, name);
  }
  return name;
}

/** The query (a builder or a raw statement), named after its compiled text (see above). */
export function named<T extends Knex.QueryBuilder | Knex.Raw>(prefix: string, q: T): T {
  const name = statementName(prefix, q.toSQL().sql);
  return name ? (q.options({ name }) as T) : q;
}
