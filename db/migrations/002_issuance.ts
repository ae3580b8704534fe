import type { Knex } from 'knex';

/**
 * Issue 3 (R1, R2): person registry details (UI contribution history per district and month,
 * residence permit), directed issuance from trainee lists, and channel claims after real-name checks.
 */
export async function up(k: Knex): Promise<void> {
  await k.schema.alterTable('persons', (t) => {
    t.text('residence_permit_district'); // 居住证 (R2.4)
    t.timestamp('updated_at', { useTz: true });
  });

  // R2.3: one row per person, district and month of UI contributions; duplicates are impossible.
  await k.schema.createTable('ui_contributions', (t) => {
    t.text('person_ref').notNullable().references('persons.person_ref');
    t.text('district').notNullable();
    t.text('month').notNullable(); // YYYY-MM
    t.primary(['person_ref', 'district', 'month']);
  });

  // R2.5 / R2.6: training institutions, or industry departments (行业主管部门), upload trainee lists.
  await k.schema.alterTable('institutions', (t) => {
    t.text('kind').notNullable().defaultTo('training'); // training | industry_department
  });

  await k.schema.createTable('trainee_lists', (t) => {
    t.text('list_id').primary();
    t.text('uploader_principal').notNullable();
    t.text('institution_id').notNullable().references('institutions.id');
    t.text('district').notNullable(); // issuing district (R2.5: the district HR bureau makes the vouchers)
    t.text('occupation_code').notNullable();
    t.text('content_hash').notNullable(); // a re-upload with other content under this listId → 409
    t.integer('total').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });

  // One row per list row; (list_id, person_ref) is the idempotency key of the issuance of that row.
  await k.schema.createTable('issuance_rows', (t) => {
    t.text('list_id').notNullable().references('trainee_lists.list_id');
    t.integer('row_no').notNullable(); // 1-based data row
    t.text('person_ref'); // null when the row names no valid, distinct person
    t.text('id_last4');
    t.text('outcome').notNullable().defaultTo('pending'); // pending | issued | rejected
    t.jsonb('reasons').notNullable().defaultTo('[]');
    t.text('voucher_no').unique();
    t.jsonb('voucher_input'); // allocated once, reused by every retry
    t.timestamp('decided_at', { useTz: true });
    t.primary(['list_id', 'row_no']);
    t.unique(['list_id', 'person_ref']);
    t.index(['list_id', 'outcome']);
  });

  // R2.7: a voucher is obtained through one channel, after real-name verification.
  await k.schema.createTable('voucher_claims', (t) => {
    t.text('voucher_no').primary();
    t.text('person_ref').notNullable();
    t.text('channel').notNullable(); // zlb | zwfw | alipay | wechat | e-sscard
    t.timestamp('claimed_at', { useTz: true }).notNullable();
  });
}

export async function down(k: Knex): Promise<void> {
  await k.schema.dropTableIfExists('voucher_claims');
  await k.schema.dropTableIfExists('issuance_rows');
  await k.schema.dropTableIfExists('trainee_lists');
  await k.schema.alterTable('institutions', (t) => t.dropColumn('kind'));
  await k.schema.dropTableIfExists('ui_contributions');
  await k.schema.alterTable('persons', (t) => {
    t.dropColumn('residence_permit_district');
    t.dropColumn('updated_at');
  });
}
