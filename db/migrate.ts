/**
 * Runs knex migrations from a static list (no file globbing, so it works the same under ts-jest, tsx
 * and a compiled build) and mirrors the policy module's versions into `policy_versions`.
 */
import type { Knex } from 'knex';
import { POLICY_VERSIONS } from '../policy/policy';
import * as m001 from './migrations/001_core';
import * as m002 from './migrations/002_issuance';
import * as m003 from './migrations/003_training';
import * as m004 from './migrations/004_settlement';
import * as m005 from './migrations/005_ops';
import * as m006 from './migrations/006_institution_accounts';
import * as m007 from './migrations/007_claims';
import * as m008 from './migrations/008_training_plans';
import * as m009 from './migrations/009_attendance_reports';
import * as m010 from './migrations/010_principals_notify';
import * as m011 from './migrations/011_spot_checks';
import * as m012 from './migrations/012_principal_scope';

const MIGRATIONS: Record<string, { up(k: Knex): Promise<void>; down(k: Knex): Promise<void> }> = {
  '001_core': m001,
  '002_issuance': m002,
  '003_training': m003,
  '004_settlement': m004,
  '005_ops': m005,
  '006_institution_accounts': m006,
  '007_claims': m007,
  '008_training_plans': m008,
  '009_attendance_reports': m009,
  '010_principals_notify': m010,
  '011_spot_checks': m011,
  '012_principal_scope': m012,
};

/** The migrations in order (tests run part of them to reproduce an older deployment's database). */
export const MIGRATION_SOURCE: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};

export async function migrateLatest(db: Knex): Promise<void> {
  await db.migrate.latest({ migrationSource: MIGRATION_SOURCE });
  // A version's values never change once published; a parameter added later to the module is added
  // to the stored copy (the jsonb merge keeps every stored value and only fills missing keys).
  for (const p of POLICY_VERSIONS) {
    await db.raw(
      `insert into policy_versions (version, effective_from, params) values (?, ?, ?::jsonb)
       on conflict (version) do update set params = excluded.params || policy_versions.params`,
      [p.version, p.effectiveFrom, JSON.stringify(p)],
    );
  }
}
