/** Activities of the training area; dependencies injected like createActivities({ db }). */
import type { ActivityDeps } from './voucher-activities';

export function createTrainingActivities(_deps: ActivityDeps) {
  return {};
}
