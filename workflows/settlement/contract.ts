/** Settlement area: workflow IDs, schedule ID and payload types (no personal data). */
export const settlementBatchWorkflowId = (date: string) => `SettlementBatch:${date}`;
export const SETTLEMENT_SCHEDULE_ID = 'settlement-batches-daily';

export interface SettlementBatchInput {
  /** YYYY-MM-DD; absent (scheduled runs): the local date of the run in the policy's time zone. */
  date?: string;
}

export interface SettlementBatchFile {
  format: 'csv' | 'xlsx';
  variant: 'masked' | 'full';
  sha256: string;
  size: number;
}

export interface SettlementBatchResult {
  date: string;
  batchIds: string[];
  created: string[];
  files: Record<string, SettlementBatchFile[]>;
}
