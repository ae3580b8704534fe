import type { Knex } from 'knex';

/** Registries, read models and the money ledger of the platform and lifecycle issue. */
export async function up(k: Knex): Promise<void> {
  await k.schema.createTable('policy_versions', (t) => {
    t.text('version').primary();
    t.date('effective_from').notNullable();
    t.jsonb('params').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });

  await k.schema.createTable('persons', (t) => {
    t.text('person_ref').primary(); // keyed hash of the resident ID number
    t.text('id_number_enc').notNullable();
    t.text('id_number_last4').notNullable();
    t.text('name_enc').notNullable();
    t.text('phone_enc');
    t.text('household_district');
    t.text('residence_district');
    t.text('employment_district');
    t.text('employment_status');
    t.text('ui_district'); // current unemployment-insurance contribution place
    t.text('unemployment_reg_district');
    t.boolean('civil_service').notNullable().defaultTo(false);
    t.boolean('east_west_partner').notNullable().defaultTo(false);
    t.specificType('priority_groups', 'text[]').notNullable().defaultTo('{}');
    t.text('bank_account_enc');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });

  await k.schema.createTable('institutions', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('district').notNullable();
    t.text('status').notNullable().defaultTo('pending'); // pending | approved | rectification | suspended
    t.text('bank_account_enc');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });

  await k.schema.createTable('classes', (t) => {
    t.text('id').primary();
    t.text('institution_id').notNullable().references('institutions.id');
    t.text('occupation_code').notNullable();
    t.text('level').notNullable();
    t.text('training_kind').notNullable(); // certificate | project | special
    t.text('mode').notNullable(); // online | offline
    t.integer('capacity').notNullable();
    t.double('venue_lat');
    t.double('venue_lng');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });

  await k.schema.createTable('class_sessions', (t) => {
    t.text('class_id').notNullable().references('classes.id');
    t.text('session_id').notNullable();
    t.timestamp('starts_at', { useTz: true }).notNullable();
    t.timestamp('ends_at', { useTz: true }).notNullable();
    t.integer('minutes').notNullable();
    t.primary(['class_id', 'session_id']);
  });

  await k.schema.createTable('class_roster', (t) => {
    t.text('class_id').notNullable().references('classes.id');
    t.text('person_ref').notNullable();
    t.timestamp('added_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.primary(['class_id', 'person_ref']);
  });

  await k.schema.createTable('enrolments', (t) => {
    t.text('voucher_no').primary(); // one use per voucher
    t.text('class_id').notNullable().references('classes.id');
    t.text('institution_id').notNullable();
    t.text('person_ref').notNullable();
    t.boolean('review_passed').notNullable();
    t.text('review_note');
    t.timestamp('enrolled_at', { useTz: true }).notNullable();
    t.index(['class_id']);
  });

  await k.schema.createTable('voucher_counters', (t) => {
    t.text('district').notNullable();
    t.integer('year').notNullable();
    t.integer('last').notNullable();
    t.primary(['district', 'year']);
  });

  // Read model, written only by the workflow's projection activity (revision-guarded).
  await k.schema.createTable('vouchers', (t) => {
    t.text('voucher_no').primary();
    t.integer('revision').notNullable();
    t.text('type').notNullable();
    t.text('status').notNullable();
    t.text('issuer_district').notNullable();
    t.text('person_ref').notNullable();
    t.text('occupation_code');
    t.text('institution_id');
    t.text('class_id');
    t.text('policy_version').notNullable();
    t.specificType('priority_groups', 'text[]').notNullable().defaultTo('{}');
    t.timestamp('obtained_at', { useTz: true }).notNullable();
    t.timestamp('activation_deadline', { useTz: true }).notNullable();
    t.timestamp('activated_at', { useTz: true });
    t.timestamp('use_deadline', { useTz: true });
    t.timestamp('enrolled_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
    t.timestamp('ended_at', { useTz: true });
    t.text('end_reason');
    t.integer('attended_minutes').notNullable().defaultTo(0);
    t.integer('total_minutes').notNullable().defaultTo(0);
    t.decimal('check_in_rate', 5, 2).notNullable().defaultTo(0);
    t.jsonb('snapshot').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.index(['status']);
    t.index(['issuer_district', 'status']);
    t.index(['person_ref']);
    t.index(['institution_id']);
  });

  // R3.4: one row per (person, year, slot); the primary key makes two activations for one slot impossible.
  await k.schema.createTable('activation_quota', (t) => {
    t.text('person_ref').notNullable();
    t.integer('year').notNullable();
    t.integer('slot').notNullable();
    t.text('voucher_no').notNullable();
    t.timestamp('taken_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.primary(['person_ref', 'year', 'slot']);
    t.unique(['voucher_no', 'year']);
  });

  // Outbox of holder notifications; a sender drains rows where sent_at is null.
  await k.schema.createTable('notifications', (t) => {
    t.bigIncrements('id');
    t.text('voucher_no').notNullable();
    t.text('person_ref').notNullable();
    t.text('kind').notNullable();
    t.timestamp('deadline', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.timestamp('sent_at', { useTz: true });
    t.unique(['voucher_no', 'kind']);
  });

  await k.schema.createTable('subsidy_catalogue', (t) => {
    t.bigIncrements('id');
    t.text('occupation_code').notNullable();
    t.text('level').notNullable();
    t.text('training_kind').notNullable();
    t.bigInteger('amount_fen').notNullable();
    t.text('funding_source').notNullable();
    t.date('valid_from').notNullable();
    t.date('valid_to'); // inclusive; null = open-ended
    t.index(['occupation_code', 'level', 'training_kind']);
  });
  await k.raw('alter table subsidy_catalogue add constraint subsidy_amount_positive check (amount_fen > 0)');

  await k.schema.createTable('certificates', (t) => {
    t.text('certificate_no').primary();
    t.text('person_ref').notNullable();
    t.text('occupation_code').notNullable();
    t.text('level').notNullable();
    t.date('issued_on').notNullable();
    t.text('issued_by');
  });

  // Every settlement decision, with the inputs that decided it (approved or rejected).
  await k.schema.createTable('subsidy_decisions', (t) => {
    t.text('voucher_no').primary();
    t.text('outcome').notNullable();
    t.text('reason');
    t.text('rule');
    t.bigInteger('amount_fen');
    t.text('payer_district');
    t.text('payee_type');
    t.text('payee_ref');
    t.text('funding_source');
    t.text('payment_route');
    t.jsonb('inputs').notNullable();
    t.timestamp('decided_at', { useTz: true }).notNullable();
  });

  // The money ledger: one disbursement row per voucher, ever.
  await k.schema.createTable('disbursements', (t) => {
    t.bigIncrements('id');
    t.text('voucher_no').notNullable().unique();
    t.text('payer_district').notNullable();
    t.text('payee_type').notNullable();
    t.text('payee_ref').notNullable();
    t.bigInteger('amount_fen').notNullable();
    t.text('funding_source').notNullable();
    t.text('payment_route').notNullable();
    t.text('status').notNullable().defaultTo('approved');
    t.text('batch_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });
  await k.raw('alter table disbursements add constraint disbursement_amount_positive check (amount_fen > 0)');

  await k.schema.createTable('principals', (t) => {
    t.text('id').primary();
    t.text('key_hash').notNullable().unique();
    t.text('role').notNullable(); // hr | institution | holder | finance | assessor | operator
    t.text('district');
    t.text('institution_id');
    t.text('person_ref');
    t.text('label');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.timestamp('revoked_at', { useTz: true });
  });
}

export async function down(k: Knex): Promise<void> {
  for (const t of [
    'principals', 'disbursements', 'subsidy_decisions', 'certificates', 'subsidy_catalogue', 'notifications',
    'activation_quota', 'vouchers', 'voucher_counters', 'enrolments', 'class_roster', 'class_sessions', 'classes',
    'institutions', 'persons', 'policy_versions',
  ]) {
    await k.schema.dropTableIfExists(t);
  }
}
