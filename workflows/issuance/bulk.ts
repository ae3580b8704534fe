/**
 * R2.5, R2.6: directed vouchers from a trainee list. The rows stay in PostgreSQL (they name people);
 * this workflow only walks row ranges, so no personal data ever enters its history. Each chunk is an
 * idempotent activity: a retry or a re-run issues nothing twice.
 */
import { proxyActivities, setHandler } from '@temporalio/workflow';
import type { createIssuanceActivities } from '../../activities/issuance-activities';
import type { BulkIssuanceInput, ChunkResult, IssuanceProgress } from './contract';
import { issuanceProgressQuery } from './messages';

const { issuanceListSize } = proxyActivities<ReturnType<typeof createIssuanceActivities>>({
  startToCloseTimeout: '1 minute',
});
const { issueListChunk } = proxyActivities<ReturnType<typeof createIssuanceActivities>>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
});

export async function bulkIssuanceWorkflow(input: BulkIssuanceInput): Promise<IssuanceProgress> {
  const progress: IssuanceProgress = { listId: input.listId, total: 0, processed: 0, issued: 0, rejected: 0, status: 'running' };
  setHandler(issuanceProgressQuery, () => ({ ...progress }));

  const { total } = await issuanceListSize(input.listId);
  progress.total = total;
  const size = Math.max(1, input.chunkSize);
  const ranges: { fromRow: number; toRow: number }[] = [];
  for (let from = 1; from <= total; from += size) ranges.push({ fromRow: from, toRow: Math.min(total, from + size - 1) });

  const add = (r: ChunkResult) => {
    progress.processed += r.processed;
    progress.issued += r.issued;
    progress.rejected += r.rejected;
  };
  const lanes = Math.max(1, input.parallelChunks ?? 2);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, ranges.length) }, async () => {
      while (next < ranges.length) {
        const range = ranges[next++]!;
        add(await issueListChunk({ listId: input.listId, ...range }));
      }
    }),
  );
  progress.status = 'completed';
  return { ...progress };
}
