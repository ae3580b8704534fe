import type { Knex } from 'knex';

/**
 * R2.7: a voucher is obtained when the holder claims it, not when it is issued. The read model keeps
 * the issue time, the claim (channel, time, deadline) and leaves the activation deadline empty until
 * the voucher is obtained.
 */
export async function up(k: Knex): Promise<void> {
  await k.schema.alterTable('vouchers', (t) => {
    t.timestamp('issued_at', { useTz: true });
    t.timestamp('claim_deadline', { useTz: true });
    t.timestamp('claimed_at', { useTz: true });
    t.text('claim_channel');
  });
  // Vouchers issued before the claim step were obtained at issue.
  await k.raw('update vouchers set issued_at = obtained_at where issued_at is null');
  await k.raw('alter table vouchers alter column issued_at set not null');
  await k.raw('alter table vouchers alter column obtained_at drop not null');
  await k.raw('alter table vouchers alter column activation_deadline drop not null');
  await k.schema.alterTable('vouchers', (t) => {
    t.index(['issuer_district', 'issued_at']);
  });
}

export async function down(k: Knex): Promise<void> {
  await k.raw('update vouchers set obtained_at = issued_at where obtained_at is null');
  await k.raw('update vouchers set activation_deadline = claim_deadline where activation_deadline is null');
  await k.raw('alter table vouchers alter column obtained_at set not null');
  await k.raw('alter table vouchers alter column activation_deadline set not null');
  await k.schema.alterTable('vouchers', (t) => {
    t.dropIndex(['issuer_district', 'issued_at']);
    t.dropColumn('issued_at');
    t.dropColumn('claim_deadline');
    t.dropColumn('claimed_at');
    t.dropColumn('claim_channel');
  });
}
