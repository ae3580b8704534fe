import type { Knex } from 'knex';

/** Training delivery (issue 4): class QR secrets, check-ins and their audit, approvals, class changes, strikes, completions. */
export async function up(k: Knex): Promise<void> {
  // R3.10: one HMAC secret per class for its rotating QR codes, stored only as ciphertext.
  await k.schema.createTable('class_qr_secrets', (t) => {
    t.text('class_id').primary().references('classes.id');
    t.text('secret_enc').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
  });

  // R3.10: every check-in attempt, accepted or refused; coordinates only as ciphertext.
  await k.schema.createTable('check_in_attempts', (t) => {
    t.bigIncrements('id');
    t.text('voucher_no').notNullable();
    t.text('class_id');
    t.text('session_id').notNullable();
    t.text('principal_id').notNullable();
    t.text('method').notNullable(); // qr_geo | online_report
    t.text('verdict').notNullable(); // accepted | refused
    t.text('reason_code');
    t.integer('distance_m');
    t.text('coords_enc');
    t.text('token_hash');
    t.integer('minutes');
    t.timestamp('attempted_at', { useTz: true }).notNullable();
    t.index(['voucher_no', 'session_id']);
  });

  // R3.10: the accepted check-in of a voucher for a session; the key makes a second one impossible.
  await k.schema.createTable('check_ins', (t) => {
    t.text('voucher_no').notNullable();
    t.text('session_id').notNullable();
    t.text('class_id').notNullable();
    t.text('method').notNullable();
    t.text('token_hash');
    t.integer('minutes').notNullable();
    t.timestamp('accepted_at', { useTz: true }).notNullable();
    t.primary(['voucher_no', 'session_id']);
  });

  // R4.1: who registered an institution and which district approved it (approval holds city-wide).
  await k.schema.createTable('institution_approvals', (t) => {
    t.bigIncrements('id');
    t.text('institution_id').notNullable().references('institutions.id');
    t.text('kind').notNullable(); // applied | approve | reapprove
    t.text('district');
    t.text('principal_id').notNullable();
    t.timestamp('at', { useTz: true }).notNullable();
    t.index(['institution_id']);
  });

  // R4.2: every change to a class's roster or teaching plan, flagged when it came after the start.
  await k.schema.createTable('class_changes', (t) => {
    t.bigIncrements('id');
    t.text('class_id').notNullable().references('classes.id');
    t.text('kind').notNullable(); // roster | sessions
    t.boolean('after_start').notNullable();
    t.jsonb('before').notNullable();
    t.jsonb('after').notNullable();
    t.text('principal_id').notNullable();
    t.timestamp('changed_at', { useTz: true }).notNullable();
    t.index(['class_id']);
  });

  // R4.4: the strike register (the institution workflow counts them within the policy window).
  await k.schema.createTable('institution_strikes', (t) => {
    t.text('id').primary();
    t.text('institution_id').notNullable().references('institutions.id');
    t.text('kind').notNullable(); // lax_review | quality
    t.text('evidence').notNullable();
    t.text('district');
    t.text('principal_id').notNullable();
    t.timestamp('recorded_at', { useTz: true }).notNullable();
    t.timestamp('cleared_at', { useTz: true });
    t.index(['institution_id']);
  });

  // R4.2: one completion submission per class, ever.
  await k.schema.createTable('class_completions', (t) => {
    t.text('class_id').primary().references('classes.id');
    t.text('principal_id').notNullable();
    t.jsonb('results').notNullable();
    t.timestamp('submitted_at', { useTz: true }).notNullable();
  });
}

export async function down(k: Knex): Promise<void> {
  for (const t of ['class_completions', 'institution_strikes', 'class_changes', 'institution_approvals', 'check_ins', 'check_in_attempts', 'class_qr_secrets']) {
    await k.schema.dropTableIfExists(t);
  }
}
