import type { Knex } from 'knex';

/** Audit log of every state-changing request, and stored Idempotency-Key answers. */
export async function up(k: Knex): Promise<void> {
  await k.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.text('principal_id');
    t.text('role');
    t.text('method').notNullable();
    t.text('path').notNullable();
    t.integer('status').notNullable();
    t.text('outcome').notNullable(); // ok | refused | error
    t.text('request_id').notNullable();
    t.text('problem_code');
    t.index(['principal_id', 'at']);
  });

  // Idempotency-Key: the first answer to (principal, key), kept with a hash of the request.
  await k.schema.createTable('idempotency_keys', (t) => {
    t.text('principal_id').notNullable();
    t.text('key').notNullable();
    t.text('request_hash').notNullable();
    t.integer('status'); // null while the first request is still running
    t.jsonb('body');
    t.text('location');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.primary(['principal_id', 'key']);
  });
}

export async function down(k: Knex): Promise<void> {
  await k.schema.dropTableIfExists('idempotency_keys');
  await k.schema.dropTableIfExists('audit_log');
}
