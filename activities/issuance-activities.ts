/** Activities of the issuance area; dependencies injected like createActivities({ db }). */
import type { ActivityDeps } from './voucher-activities';

export function createIssuanceActivities(_deps: ActivityDeps) {
  return {};
}
