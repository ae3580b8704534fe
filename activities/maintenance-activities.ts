/** Activities of the maintenance jobs (retention). Idempotent: a rerun erases nothing more than due. */
import { policyInForceFromDb } from '../api/voucher-input';
import type { ActivityDeps } from './voucher-activities';

export function createMaintenanceActivities({ db, now = Date.now }: ActivityDeps) {
  return {
    /** The retention period of the policy in force today. */
    async coordinateRetentionDays(): Promise<number> {
      return (await policyInForceFromDb(db, now())).checkInCoordinateRetentionDays;
    },

    /** Erases raw coordinates of attempts whose voucher ended more than `retentionDays` ago. */
    async purgeCheckInCoordinates(i: { retentionDays: number }): Promise<number> {
      const cutoff = new Date(now() - i.retentionDays * 86_400_000).toISOString();
      return db('check_in_attempts')
        .whereNotNull('coords_enc')
        .whereIn('voucher_no', db('vouchers').select('voucher_no').whereNotNull('ended_at').andWhere('ended_at', '<', cutoff))
        .update({ coords_enc: null });
    },
  };
}
export type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;
