/** Contract of directed issuance from trainee lists (R2.5, R2.6): pure types and helpers. */

/** One bulk-issuance job per trainee list; the list ID is chosen by the uploader and holds no personal data. */
export function issuanceWorkflowId(listId: string): string {
  return `Issuance:${listId}`;
}

export const LIST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * How a list is walked: rows per chunk activity, and chunks at once (so one chunk's database work
 * overlaps the others' starts; the worker caps starts in flight across chunks, docs/PERFORMANCE.md §6).
 */
export const LIST_CHUNK_SIZE = 200;
export const LIST_PARALLEL_CHUNKS = 4;

/**
 * Rows per chunk for a list of `total` rows: at most `max`, and as even as the rows allow over the
 * fewest whole waves of `lanes` chunks, so that the last wave keeps every lane busy instead of leaving
 * some idle while the rest finish. 10,000 rows: 52 chunks of ≤ 193 (13 waves of 4) rather than 50 of
 * 200, whose last two ran alone for a whole chunk's time (docs/PERFORMANCE.md §6). Chosen when the job
 * starts and carried in its input, so a running job keeps its chunks.
 */
export function listChunkSize(total: number, lanes = LIST_PARALLEL_CHUNKS, max = LIST_CHUNK_SIZE): number {
  if (total <= 0) return max;
  const waves = Math.ceil(total / (lanes * max));
  return Math.min(max, Math.ceil(total / (waves * lanes)));
}

export interface BulkIssuanceInput {
  listId: string;
  /** Rows per activity call. */
  chunkSize: number;
  /** Chunks processed at once. */
  parallelChunks?: number;
}

export interface ChunkResult {
  processed: number;
  issued: number;
  rejected: number;
}

export interface IssuanceProgress extends ChunkResult {
  listId: string;
  total: number;
  status: 'running' | 'completed';
}
