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
}

export async function down(k: Knex): Promise<void> {
  await k.schema.dropTableIfExists('audit_log');
}
