/**
 * Benchmark baseline only (never registered by the production worker): a workflow with the voucher
 * workflow's message shape — the same `activate` / `enrol` Updates, `checkIn` / `complete` Signals,
 * the same activity calls (quota, enrolment and settlement as activities; every state publication as
 * a local activity) and the same wait loop — but handlers that decide nothing and activities that
 * touch no database (bench/skeleton-activities.ts). The ratio real ÷ skeleton is therefore the cost
 * of the voucher's own logic, PostgreSQL and search attributes on top of Temporal's floor.
 */
import { condition, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { ActivateRequest, CheckInSignal, CompleteSignal, EnrolRequest, VoucherInput } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate, stateQuery } from '../workflows/voucher/messages';
import type { SkeletonActivities } from './skeleton-activities';

// Same activity options as the voucher workflow.
const acts = proxyActivities<SkeletonActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});
const projection = proxyLocalActivities<SkeletonActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '30 seconds' },
});

export interface SkeletonResult {
  revision: number;
  voucherNo: string;
  status: string;
  attendedMinutes: number;
  settlement: { outcome: 'approved' };
}

export async function skeletonVoucherWorkflow(input: VoucherInput): Promise<SkeletonResult> {
  // A snapshot of the same shape the voucher returns, so payloads are of comparable size.
  const s = {
    revision: 0,
    voucherNo: input.voucherNo,
    status: 'issued',
    sessions: [] as { sessionId: string; minutes: number; verifiedMinutes: number }[],
    classPlan: undefined as unknown,
    attendedMinutes: 0,
  };
  let dirty = true;
  let completed: CompleteSignal | undefined;
  const touch = () => {
    s.revision += 1;
    dirty = true;
  };
  async function publish(): Promise<void> {
    if (!dirty) return;
    dirty = false;
    await projection.projectNothing({ ...s });
  }

  setHandler(stateQuery, () => ({ ...s }) as never);
  setHandler(activateUpdate, async (_r: ActivateRequest) => {
    await acts.nothingQuota({ voucherNo: input.voucherNo });
    s.status = 'activated';
    touch();
    await publish();
    return { ...s } as never;
  });
  setHandler(enrolUpdate, async (r: EnrolRequest) => {
    const { plan } = await acts.nothingEnrol({ classId: r.classId });
    s.status = 'in_training';
    s.classPlan = plan;
    touch();
    await publish();
    return { ...s } as never;
  });
  setHandler(checkInSignal, (c: CheckInSignal) => {
    s.sessions.push({ sessionId: c.sessionId, minutes: c.verifiedMinutes, verifiedMinutes: c.verifiedMinutes });
    s.attendedMinutes += c.verifiedMinutes;
    touch();
  });
  setHandler(completeSignal, (c: CompleteSignal) => {
    completed = c;
  });

  await publish();
  while (!completed) {
    await condition(() => dirty || !!completed);
    await publish();
  }
  s.status = 'completed';
  touch();
  await publish();
  const settlement = await acts.nothingSettle({ voucherNo: input.voucherNo });
  s.status = 'settled';
  touch();
  await publish();
  return { ...s, settlement };
}
