import type { Knex } from 'knex';

/**
 * R2.6: an industry department (行业主管部门) files a training plan (trainees, subsidy standard) with
 * the HR bureau and the finance bureau of its district before it uploads trainee lists; both bureaus
 * acknowledge it, and only then are vouchers made from the department's lists under that plan.
 */
export async function up(k: Knex): Promise<void> {
  await k.schema.createTable('training_plans', (t) => {
    t.text('plan_id').primary();
    t.text('department_id').notNullable().references('institutions.id');
    t.text('district').notNullable(); // the HR and finance bureaus at the same level
    t.text('occupation_code').notNullable();
    t.integer('trainees').notNullable();
    t.bigInteger('subsidy_standard_fen').notNullable(); // per trainee, integer fen
    t.text('funding_source').notNullable();
    t.date('period_from').notNullable();
    t.date('period_to').notNullable();
    t.text('note');
    t.text('content_hash').notNullable(); // a re-filing with other content under this planId → 409
    t.text('filed_by').notNullable();
    t.timestamp('filed_at', { useTz: true }).notNullable();
    t.text('hr_ack_by');
    t.timestamp('hr_ack_at', { useTz: true });
    t.text('finance_ack_by');
    t.timestamp('finance_ack_at', { useTz: true });
    t.index(['district', 'filed_at']);
    t.index(['department_id']);
  });
  await k.raw('alter table training_plans add constraint training_plans_trainees_positive check (trainees > 0)');
  await k.raw('alter table training_plans add constraint training_plans_standard_positive check (subsidy_standard_fen > 0)');
  await k.raw('alter table training_plans add constraint training_plans_period check (period_from <= period_to)');
  await k.schema.alterTable('trainee_lists', (t) => {
    t.text('plan_id').references('training_plans.plan_id');
    t.index(['plan_id']);
  });
}

export async function down(k: Knex): Promise<void> {
  await k.schema.alterTable('trainee_lists', (t) => {
    t.dropIndex(['plan_id']);
    t.dropColumn('plan_id');
  });
  await k.schema.dropTableIfExists('training_plans');
}
