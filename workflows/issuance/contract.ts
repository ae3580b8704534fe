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
