import type { Knex } from 'knex';

/**
 * Every principal in use has its scope: an HR key acts for a district, an institution's for that
 * institution, a holder's for a person (api/auth.ts `createPrincipal` already refuses others). Without
 * this the database accepted a row edited by hand without one, and only the API's 403 stood between
 * such a key and data it must not see. `NOT VALID`: rows already stored are not checked, so the
 * migration cannot fail on a deployment that holds one (the API keeps answering 403 FORBIDDEN_SCOPE to
 * them); every row inserted or changed from now on is. A revoked principal needs no scope, so revoking
 * such a legacy row is still allowed.
 */
export async function up(k: Knex): Promise<void> {
  await k.raw(`
    ALTER TABLE principals ADD CONSTRAINT principal_scoped CHECK (
      revoked_at IS NOT NULL
      OR ((role <> 'hr' OR district IS NOT NULL)
          AND (role <> 'institution' OR institution_id IS NOT NULL)
          AND (role <> 'holder' OR person_ref IS NOT NULL))
    ) NOT VALID`);
}

export async function down(k: Knex): Promise<void> {
  await k.raw('ALTER TABLE principals DROP CONSTRAINT IF EXISTS principal_scoped');
}
