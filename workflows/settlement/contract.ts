/** Settlement area: workflow IDs, schedule ID and payload types (no personal data). */
/**
 * The run of a date: city-wide (the daily schedule, city finance), or one paying district's (finance of
 * that district: its run batches its own district only, never another district's disbursements).
 */
export const settlementBatchWorkflowId = (date: string, district?: string) =>
  district ? `SettlementBatch:${date}:${district}` : `SettlementBatch:${date}`;
export const SETTLEMENT_SCHEDULE_ID = 'settlement-batches-daily';

export interface SettlementBatchInput {
  /** YYYY-MM-DD; absent (scheduled runs): the local date of the run in the policy's time zone. */
  date?: string;
  /** A paying district (six digits): batch that district's disbursements only. Absent: every district. */
  district?: string;
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
