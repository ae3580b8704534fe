/**
 * R4.4: one durable workflow per institution keeps its strike register. Each strike counts for
 * `strikeWindowMonths` calendar months (its own timer); when strikes of one kind reach
 * `strikesBeforeRectification`, the institution is put under rectification (no new enrolments).
 * HR's re-approval sets it back to approved and clears the counted strikes.
 */
import { condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { TrainingActivities } from '../../activities/training-activities';
import { addCalendarMonths } from '../../policy/calendar';
import {
  STRIKE_KINDS,
  type CountedStrike,
  type InstitutionState,
  type InstitutionStatus,
  type InstitutionWorkflowInput,
  type ReapproveSignal,
  type RecordStrikeSignal,
  type StrikeKind,
} from './contract';
import { institutionStateQuery, reapproveSignal, recordStrikeSignal } from './messages';

const acts = proxyActivities<TrainingActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});

export async function institutionWorkflow(input: InstitutionWorkflowInput): Promise<void> {
  const ctx = await acts.trainingInstitutionContext({ institutionId: input.institutionId });
  const { policy } = ctx;
  let status: InstitutionStatus = input.carried?.status ?? ctx.status;
  let strikes: CountedStrike[] = input.carried?.strikes ?? [];
  const seen = new Set<string>(input.carried?.seen ?? []);
  let rectifiedAt = input.carried?.rectifiedAt;
  let reapproval: ReapproveSignal | undefined;
  let changed = false;

  const counts = (): Record<StrikeKind, number> => {
    const c = { lax_review: 0, quality: 0 } as Record<StrikeKind, number>;
    for (const s of strikes) c[s.kind] += 1;
    return c;
  };

  setHandler(institutionStateQuery, (): InstitutionState => ({
    institutionId: input.institutionId,
    status,
    strikes: [...strikes],
    counts: counts(),
    threshold: policy.strikesBeforeRectification,
    windowMonths: policy.strikeWindowMonths,
    ...(rectifiedAt !== undefined ? { rectifiedAt } : {}),
  }));

  setHandler(recordStrikeSignal, (s: RecordStrikeSignal) => {
    if (seen.has(s.strikeId) || !STRIKE_KINDS.includes(s.kind)) return;
    seen.add(s.strikeId);
    const at = Date.now();
    strikes.push({ strikeId: s.strikeId, kind: s.kind, at, expiresAt: addCalendarMonths(at, policy.strikeWindowMonths, policy.timeZone) });
    changed = true;
  });

  setHandler(reapproveSignal, (r: ReapproveSignal) => {
    reapproval = r;
    changed = true;
  });

  for (;;) {
    changed = false;
    const now = Date.now();
    // Each strike stops counting when its window closes.
    strikes = strikes.filter((s) => s.expiresAt > now);

    if (reapproval) {
      const by = reapproval.by;
      reapproval = undefined;
      if (status === 'rectification') {
        const r = await acts.trainingReapproveInstitution({ institutionId: input.institutionId, strikeIds: strikes.map((s) => s.strikeId), by });
        status = r.status;
        strikes = [];
        rectifiedAt = undefined;
      }
      continue;
    }

    if (status === 'approved') {
      const c = counts();
      const reached = STRIKE_KINDS.find((k) => c[k] >= policy.strikesBeforeRectification);
      if (reached) {
        const r = await acts.trainingPutUnderRectification({ institutionId: input.institutionId, kind: reached });
        status = r.status;
        if (status === 'rectification') rectifiedAt = Date.now();
        continue;
      }
    }

    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof institutionWorkflow>({
        institutionId: input.institutionId,
        carried: { strikes, seen: [...seen].slice(-1000), status, ...(rectifiedAt !== undefined ? { rectifiedAt } : {}) },
      });
    }

    const nextExpiry = strikes.reduce<number | undefined>((m, s) => (m === undefined || s.expiresAt < m ? s.expiresAt : m), undefined);
    if (nextExpiry === undefined) await condition(() => changed);
    else await condition(() => changed, Math.max(1, nextExpiry - Date.now()));
  }
}
