import type { Knex } from 'knex';

/**
 * R3.10: attendance an institution reports for a trainee (POST /v1/vouchers/{no}/check-ins), one row per
 * voucher and session. The primary key is what makes a repeated or concurrent report count once before
 * any signal is sent, so the API answers `duplicate` exactly without asking the workflow.
 */
export async function up(k: Knex): Promise<void> {
  await k.schema.createTable('attendance_reports', (t) => {
    t.text('voucher_no').notNullable();
    t.text('session_id').notNullable();
    t.text('institution_id').notNullable();
    t.integer('verified_minutes').notNullable();
    t.text('principal_id').notNullable();
    t.timestamp('reported_at', { useTz: true }).notNullable();
    t.primary(['voucher_no', 'session_id']);
  });
}

export async function down(k: Knex): Promise<void> {
  await k.schema.dropTableIfExists('attendance_reports');
}
