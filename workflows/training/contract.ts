/** Contract of the training area's workflows: IDs, inputs, signal payloads and query results (pure). */

export const institutionWorkflowId = (institutionId: string) => `Institution:${institutionId}`;
export const classCompletionWorkflowId = (classId: string) => `ClassCompletion:${classId}`;

export type StrikeKind = 'lax_review' | 'quality';
export const STRIKE_KINDS: readonly StrikeKind[] = ['lax_review', 'quality'];

export interface RecordStrikeSignal {
  /** Key of the strike's row in `institution_strikes` (the evidence stays there, out of workflow history). */
  strikeId: string;
  kind: StrikeKind;
  /** Reference to the evidence (`strike:<id>`); the text itself is kept in the database. */
  evidence: string;
  /** Principal who recorded it. */
  by: string;
}

export interface ReapproveSignal {
  by: string;
}

export interface CountedStrike {
  strikeId: string;
  kind: StrikeKind;
  at: number;
  /** The strike stops counting at this instant (strike time + strikeWindowMonths calendar months). */
  expiresAt: number;
}

export type InstitutionStatus = 'pending' | 'approved' | 'rectification' | 'suspended';

export interface InstitutionWorkflowInput {
  institutionId: string;
  /** State carried across continue-as-new. */
  carried?: { strikes: CountedStrike[]; seen: string[]; status: InstitutionStatus; rectifiedAt?: number };
}

export interface InstitutionState {
  institutionId: string;
  status: InstitutionStatus;
  strikes: CountedStrike[];
  counts: Record<StrikeKind, number>;
  threshold: number;
  windowMonths: number;
  rectifiedAt?: number;
}

export interface TraineeResult {
  voucherNo: string;
  assessmentPassed: boolean;
  certificateNo?: string;
}

export interface ClassCompletionInput {
  classId: string;
  institutionId: string;
  results: TraineeResult[];
}

export type TraineeOutcome = 'pending' | 'signalled' | 'voucher_not_running';

export interface ClassCompletionState {
  classId: string;
  done: boolean;
  trainees: Array<TraineeResult & { outcome: TraineeOutcome }>;
}
