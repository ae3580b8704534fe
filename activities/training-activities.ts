/** Activities of the training area; dependencies injected like createActivities({ db }). */
import { policyInForceFromDb } from '../api/voucher-input';
import type { PolicyParams } from '../policy/policy';
import type { InstitutionStatus, StrikeKind } from '../workflows/training/contract';
import type { ActivityDeps } from './voucher-activities';

export function createTrainingActivities({ db, now }: ActivityDeps) {
  const clock = now ?? Date.now;
  return {
    /** The policy in force and the institution's current status (R4.4 workflow start). */
    async trainingInstitutionContext(i: { institutionId: string }): Promise<{ policy: PolicyParams; status: InstitutionStatus }> {
      const policy = await policyInForceFromDb(db, clock());
      const row = await db('institutions').where({ id: i.institutionId }).first();
      if (!row) throw new Error(`no institution ${i.institutionId}`);
      return { policy, status: row.status as InstitutionStatus };
    },

    /** R4.4: approved → rectification; idempotent (a retry or a second call changes nothing). */
    async trainingPutUnderRectification(i: { institutionId: string; kind: StrikeKind }): Promise<{ status: InstitutionStatus }> {
      await db('institutions').where({ id: i.institutionId, status: 'approved' }).update({ status: 'rectification' });
      const row = await db('institutions').where({ id: i.institutionId }).first();
      return { status: row.status as InstitutionStatus };
    },

    /** R4.4: rectification → approved, and the counted strikes are marked cleared; idempotent. */
    async trainingReapproveInstitution(i: { institutionId: string; strikeIds: string[]; by: string }): Promise<{ status: InstitutionStatus }> {
      return db.transaction(async (trx) => {
        await trx('institutions').where({ id: i.institutionId, status: 'rectification' }).update({ status: 'approved' });
        if (i.strikeIds.length > 0) {
          await trx('institution_strikes').whereIn('id', i.strikeIds).whereNull('cleared_at').update({ cleared_at: new Date(clock()).toISOString() });
        }
        const row = await trx('institutions').where({ id: i.institutionId }).first();
        return { status: row.status as InstitutionStatus };
      });
    },
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
