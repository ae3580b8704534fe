/**
 * R3.13: the daily settlement batch run. Gathers approved, unbatched disbursements into one batch per
 * paying district and funding source, then renders each batch's table (CSV, XLSX) and stores it with
 * its SHA-256. Re-running for a date finds the same batches and produces nothing new. A run scoped to
 * one paying district (`input.district`) batches and renders that district's only.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createSettlementActivities } from '../../activities/settlement-activities';
import type { SettlementBatchInput, SettlementBatchResult } from './contract';

// The activities heartbeat every few seconds, so a worker that dies mid-batch is noticed within the
// heartbeat timeout and the attempt retried on another worker; the long start-to-close only bounds a
// very large batch on a slow database (100,000 rows take seconds, docs/PERFORMANCE.md figure 7).
const acts = proxyActivities<ReturnType<typeof createSettlementActivities>>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 10 },
});

export async function settlementBatchWorkflow(input: SettlementBatchInput = {}): Promise<SettlementBatchResult> {
  const date = input.date ?? (await acts.settlementBatchDate({ at: Date.now() }));
  const prepared = await acts.settlementPrepareBatches({ date, district: input.district });
  const files: SettlementBatchResult['files'] = {};
  for (const batchId of prepared.batchIds) {
    files[batchId] = await acts.settlementRenderBatchFiles({ batchId });
  }
  return { date, batchIds: prepared.batchIds, created: prepared.created, files };
}
