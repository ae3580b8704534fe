import type { Knex } from 'knex';

/**
 * Settlement and money (issue 5): catalogue validity without overlaps (R3.11), the certificate
 * registry's audit columns (R3.13), budgets (R3.12), settlement batches and their files (R3.13),
 * account changes, clawbacks (R4.5).
 */
export async function up(k: Knex): Promise<void> {
  // R3.11: two entries for the same (occupation, level, kind) never overlap in time — enforced by the database.
  await k.raw('create extension if not exists btree_gist');
  await k.schema.alterTable('subsidy_catalogue', (t) => {
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });
  await k.raw(`alter table subsidy_catalogue add constraint subsidy_catalogue_no_overlap
    exclude using gist (occupation_code with =, level with =, training_kind with =, daterange(valid_from, valid_to, '[]') with &&)`);
  await k.raw(`alter table subsidy_catalogue add constraint subsidy_catalogue_valid_range check (valid_to is null or valid_to >= valid_from)`);

  await k.schema.alterTable('certificates', (t) => {
    t.timestamp('registered_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.index(['person_ref']);
  });

  // R3.12: money allocated per paying district, funding source and year; reserved never exceeds total.
  await k.schema.createTable('budgets', (t) => {
    t.text('district').notNullable();
    t.text('funding_source').notNullable();
    t.integer('year').notNullable();
    t.bigInteger('total_fen').notNullable().defaultTo(0);
    t.bigInteger('reserved_fen').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.primary(['district', 'funding_source', 'year']);
  });
  await k.raw('alter table budgets add constraint budget_reserved_within_total check (reserved_fen >= 0 and reserved_fen <= total_fen)');

  await k.schema.createTable('budget_top_ups', (t) => {
    t.bigIncrements('id');
    t.text('district').notNullable();
    t.text('funding_source').notNullable();
    t.integer('year').notNullable();
    t.bigInteger('amount_fen').notNullable();
    t.text('principal_id').notNullable();
    t.jsonb('released').notNullable(); // voucher numbers released from the queue
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });
  await k.raw('alter table budget_top_ups add constraint top_up_positive check (amount_fen > 0)');

  // Ledger rows: budget year reserved against; status approved | waiting_budget | batched | paid | failed.
  await k.schema.alterTable('disbursements', (t) => {
    t.integer('budget_year');
    t.timestamp('reserved_at', { useTz: true });
    t.timestamp('paid_at', { useTz: true });
    t.index(['status', 'payer_district', 'funding_source']);
  });

  // R3.13: the disbursement table, stamped by HR and sent to finance.
  await k.schema.createTable('settlement_batches', (t) => {
    t.text('id').primary(); // B-<district>-<fundingSource>-<YYYYMMDD>
    t.text('district').notNullable();
    t.text('funding_source').notNullable();
    t.text('payment_route').notNullable();
    t.date('batch_date').notNullable();
    t.text('status').notNullable().defaultTo('prepared'); // prepared | approved | sent | reconciled
    t.bigInteger('total_fen').notNullable();
    t.integer('line_count').notNullable();
    t.text('approved_by');
    t.timestamp('approved_at', { useTz: true });
    t.text('sent_by');
    t.timestamp('sent_at', { useTz: true });
    t.timestamp('reconciled_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.unique(['district', 'funding_source', 'batch_date']);
  });

  await k.schema.createTable('batch_lines', (t) => {
    t.text('batch_id').notNullable().references('settlement_batches.id');
    t.integer('line_no').notNullable();
    t.bigInteger('disbursement_id').notNullable().references('disbursements.id');
    t.text('voucher_no').notNullable();
    t.text('payee_type').notNullable();
    t.text('payee_ref').notNullable();
    t.text('payee_id_masked').notNullable();
    t.text('payee_name_enc').notNullable(); // ciphertext (institution names are encrypted too, uniformly)
    t.text('account_enc'); // the account registered at batching time (ciphertext)
    t.bigInteger('amount_fen').notNullable();
    t.text('result'); // null | paid | failed
    t.text('reason');
    t.text('confirmed_by');
    t.timestamp('confirmed_at', { useTz: true });
    t.primary(['batch_id', 'line_no']);
    t.unique(['batch_id', 'disbursement_id']);
  });
  await k.raw('alter table batch_lines add constraint batch_line_amount_positive check (amount_fen > 0)');

  // Files of a batch: content encrypted at rest (names, accounts), SHA-256 of the plain file.
  await k.schema.createTable('batch_files', (t) => {
    t.text('batch_id').notNullable().references('settlement_batches.id');
    t.text('format').notNullable(); // csv | xlsx
    t.text('variant').notNullable(); // masked (HR) | full (finance)
    t.binary('content_enc').notNullable();
    t.text('sha256').notNullable();
    t.integer('size').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.primary(['batch_id', 'format', 'variant']);
  });

  // Audit of bank-account corrections (masked values only).
  await k.schema.createTable('account_changes', (t) => {
    t.bigIncrements('id');
    t.text('person_ref').notNullable();
    t.text('old_masked');
    t.text('new_masked').notNullable();
    t.text('principal_id').notNullable();
    t.timestamp('changed_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.index(['person_ref']);
  });

  // R4.5: the negative ledger entry of a clawback, one per voucher, linked to the original row.
  await k.schema.createTable('clawbacks', (t) => {
    t.bigIncrements('id');
    t.text('voucher_no').notNullable().unique();
    t.bigInteger('disbursement_id').notNullable().unique().references('disbursements.id');
    t.text('district').notNullable();
    t.text('funding_source').notNullable();
    t.bigInteger('amount_fen').notNullable();
    t.text('reason').notNullable();
    t.text('institution_id');
    t.text('strike_id');
    t.text('principal_id').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
    t.timestamp('recovered_at', { useTz: true });
    t.text('recovered_by');
  });
  await k.raw('alter table clawbacks add constraint clawback_negative check (amount_fen < 0)');
}

export async function down(k: Knex): Promise<void> {
  for (const t of ['clawbacks', 'account_changes', 'batch_files', 'batch_lines', 'settlement_batches', 'budget_top_ups', 'budgets']) {
    await k.schema.dropTableIfExists(t);
  }
  await k.raw('alter table subsidy_catalogue drop constraint if exists subsidy_catalogue_no_overlap');
  await k.raw('alter table subsidy_catalogue drop constraint if exists subsidy_catalogue_valid_range');
  await k.schema.alterTable('subsidy_catalogue', (t) => {
    t.dropColumn('created_by');
    t.dropColumn('created_at');
  });
  await k.schema.alterTable('certificates', (t) => {
    t.dropIndex(['person_ref']);
    t.dropColumn('registered_at');
  });
  await k.schema.alterTable('disbursements', (t) => {
    t.dropIndex(['status', 'payer_district', 'funding_source']);
    t.dropColumn('budget_year');
    t.dropColumn('reserved_at');
    t.dropColumn('paid_at');
  });
}
