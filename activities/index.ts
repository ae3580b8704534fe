/** All activities of the worker, built from injected dependencies. */
import { createIssuanceActivities } from './issuance-activities';
import { createMaintenanceActivities } from './maintenance-activities';
import { createSettlementActivities } from './settlement-activities';
import { createTrainingActivities } from './training-activities';
import { createActivities, type ActivityDeps } from './voucher-activities';

export function createAllActivities(deps: ActivityDeps) {
  return {
    ...createActivities(deps),
    ...createIssuanceActivities(deps),
    ...createTrainingActivities(deps),
    ...createSettlementActivities(deps),
    ...createMaintenanceActivities(deps),
  };
}
export type AllActivities = ReturnType<typeof createAllActivities>;
