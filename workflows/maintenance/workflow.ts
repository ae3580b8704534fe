/**
 * Daily retention job: raw check-in coordinates are kept (encrypted) only as long as settlement needs
 * them; after the policy's retention period from the voucher's end they are erased, while the verdict,
 * reason and distance of every attempt stay.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { MaintenanceActivities } from '../../activities/maintenance-activities';
import type { RetentionResult } from './contract';

const acts = proxyActivities<MaintenanceActivities>({ startToCloseTimeout: '5 minutes', retry: { maximumInterval: '1 minute' } });

export async function retentionWorkflow(): Promise<RetentionResult> {
  const retentionDays = await acts.coordinateRetentionDays();
  const coordinatesPurged = await acts.purgeCheckInCoordinates({ retentionDays });
  return { coordinatesPurged, retentionDays };
}
