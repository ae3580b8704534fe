/**
 * Benchmark baseline only (never registered by the production worker): the cheapest workflow that
 * stays open like a freshly issued voucher does — one workflow task that sets a timer.
 */
import { sleep } from '@temporalio/workflow';

export async function trivialWorkflow(): Promise<void> {
  await sleep('30 days');
}
