/**
 * R4.2: after a class ends the institution pushes its results once; this workflow hands each enrolled
 * voucher its completion (assessment, certificate) as a durable signal. A voucher ignores a second
 * completion, so a re-run cannot complete anyone twice.
 */
import { getExternalWorkflowHandle, setHandler } from '@temporalio/workflow';
import { voucherWorkflowId } from '../voucher/contract';
import { completeSignal } from '../voucher/messages';
import type { ClassCompletionInput, ClassCompletionState } from './contract';
import { classCompletionQuery } from './messages';

export async function classCompletionWorkflow(input: ClassCompletionInput): Promise<ClassCompletionState> {
  const state: ClassCompletionState = {
    classId: input.classId,
    done: false,
    trainees: input.results.map((r) => ({ ...r, outcome: 'pending' as const })),
  };
  setHandler(classCompletionQuery, () => ({ ...state, trainees: state.trainees.map((t) => ({ ...t })) }));

  for (const t of state.trainees) {
    try {
      await getExternalWorkflowHandle(voucherWorkflowId(t.voucherNo)).signal(completeSignal, {
        assessmentPassed: t.assessmentPassed,
        ...(t.certificateNo ? { certificateNo: t.certificateNo } : {}),
      });
      t.outcome = 'signalled';
    } catch {
      // The voucher's workflow is no longer running (revoked, or otherwise closed).
      t.outcome = 'voucher_not_running';
    }
  }
  state.done = true;
  return state;
}
