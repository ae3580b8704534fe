/** Maintenance domain: the daily retention job. */
export const RETENTION_SCHEDULE_ID = 'retention-daily';
export const RETENTION_WORKFLOW_ID = 'Retention:scheduled';

export interface RetentionResult {
  coordinatesPurged: number;
  retentionDays: number;
}
