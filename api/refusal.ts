/** Turns a voucher workflow's refused Update into the API's problem+json answer. */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Problem } from './problem';

/** How each refusal code maps to HTTP: policy refusals 422, state conflicts 409, unknown objects 404. */
const REFUSAL_STATUS: Record<string, number> = {
  ACTIVATION_WINDOW_CLOSED: 422,
  CLAIM_WINDOW_CLOSED: 422,
  ANNUAL_QUOTA_USED: 422,
  USE_WINDOW_CLOSED: 422,
  OCCUPATION_MISMATCH: 422,
  INSTITUTION_NOT_APPROVED: 422,
  INSTITUTION_UNDER_RECTIFICATION: 422,
  CLASS_STARTED_NOT_ON_ROSTER: 422,
  INSTITUTION_REVIEW_FAILED: 422,
  VOUCHER_NOT_CLAIMED: 409,
  VOUCHER_NOT_AWAITING_CLAIM: 409,
  VOUCHER_NOT_AWAITING_ACTIVATION: 409,
  VOUCHER_NOT_ACTIVE: 409,
  ACTION_IN_PROGRESS: 409,
  CLASS_FULL: 409,
  CLASS_NOT_FOUND: 404,
  CLASS_OF_ANOTHER_INSTITUTION: 404,
};

/** The Problem for a refused Update (validator or handler), or undefined for any other error. */
export function refusalFrom(e: unknown): Problem | undefined {
  if (!(e instanceof WorkflowUpdateFailedError)) return undefined;
  const cause = e.cause;
  if (cause instanceof ApplicationFailure) {
    const d = (cause.details?.[0] ?? {}) as { code?: string; rule?: string | null };
    const code = d.code ?? cause.type ?? 'REFUSED';
    return new Problem(REFUSAL_STATUS[code] ?? 409, code, cause.message, d.rule ?? null);
  }
  return new Problem(409, 'REFUSED', cause?.message ?? e.message);
}
