/** Activities of the settlement area; dependencies injected like createActivities({ db }). */
import type { ActivityDeps } from './voucher-activities';

export function createSettlementActivities(_deps: ActivityDeps) {
  return {};
}
