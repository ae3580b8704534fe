import type { Knex } from 'knex';

/**
 * Every change to a principal (revocation, key rotation, a hand edit in psql) is announced on the
 * `principals_changed` channel with the principal's id, at commit. API processes that cache
 * authenticated principals (api/principal-cache.ts) drop the entry when they hear it.
 */
export async function up(k: Knex): Promise<void> {
  await k.raw(`
    CREATE FUNCTION principals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('principals_changed', OLD.id);
      RETURN NULL;
    END $$`);
  await k.raw(`CREATE TRIGGER principals_changed AFTER UPDATE OR DELETE ON principals FOR EACH ROW EXECUTE FUNCTION principals_changed()`);
}

export async function down(k: Knex): Promise<void> {
  await k.raw('DROP TRIGGER IF EXISTS principals_changed ON principals');
  await k.raw('DROP FUNCTION IF EXISTS principals_changed()');
}
