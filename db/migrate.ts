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

const MIGRATIONS: Record<string, { up(k: Knex): Promise<void>; down(k: Knex): Promise<void> }> = {
  '001_core': m001,
  '002_issuance': m002,
  '003_training': m003,
  '004_settlement': m004,
};

const source: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};

export async function migrateLatest(db: Knex): Promise<void> {
  await db.migrate.latest({ migrationSource: source });
  for (const p of POLICY_VERSIONS) {
    await db('policy_versions')
      .insert({ version: p.version, effective_from: p.effectiveFrom, params: JSON.stringify(p) })
      .onConflict('version')
      .ignore();
  }
}
