import type { Knex } from 'knex';

/**
 * Institution bank accounts (issue 5, R3.9, R3.13). `institutions.bank_account_enc` (AES-256-GCM
 * ciphertext through lib/pii, like `persons.bank_account_enc`) exists since 001 and could only be set
 * at registration; an institution now registers or corrects it through
 * `PUT /v1/institutions/{id}/bank-account`. Every change is audited in `account_changes`, the table
 * persons' corrections use: the row names either a person or an institution, never both, and holds
 * masked values only (last four digits), who and when.
 */
export async function up(k: Knex): Promise<void> {
  await k.schema.alterTable('account_changes', (t) => {
    t.text('institution_id').references('institutions.id');
    t.index(['institution_id']);
  });
  await k.raw('alter table account_changes alter column person_ref drop not null');
  await k.raw('alter table account_changes add constraint account_change_one_payee check ((person_ref is null) <> (institution_id is null))');
  // R3.13: a corrected account sends the payee's failed lines back to the queue; find them by payee.
  await k.raw(`create index disbursements_failed_by_payee on disbursements (payee_type, payee_ref) where status = 'failed'`);
}

export async function down(k: Knex): Promise<void> {
  await k.raw('drop index if exists disbursements_failed_by_payee');
  await k('account_changes').whereNotNull('institution_id').del();
  await k.raw('alter table account_changes drop constraint if exists account_change_one_payee');
  await k.raw('alter table account_changes alter column person_ref set not null');
  await k.schema.alterTable('account_changes', (t) => {
    t.dropIndex(['institution_id']);
    t.dropColumn('institution_id');
  });
}
