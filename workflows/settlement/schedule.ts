/**
 * R3.13: the Temporal Schedule that runs the settlement batch once a day (client-side code: never
 * imported by a workflow). Idempotent: an existing schedule is updated to the wanted spec.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { VOUCHER_TASK_QUEUE } from '../voucher/contract';
import { SETTLEMENT_SCHEDULE_ID, type SettlementBatchInput } from './contract';

export interface SettlementScheduleOptions {
  taskQueue?: string;
  /** Local time of the daily run (default 02:00 Asia/Shanghai). */
  hour?: number;
  minute?: number;
  timeZone?: string;
  scheduleId?: string;
}

export async function ensureSettlementSchedule(client: Client, o: SettlementScheduleOptions = {}): Promise<string> {
  const scheduleId = o.scheduleId ?? SETTLEMENT_SCHEDULE_ID;
  const spec = { calendars: [{ hour: o.hour ?? 2, minute: o.minute ?? 0 }], timezone: o.timeZone ?? 'Asia/Shanghai' };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'settlementBatchWorkflow',
    workflowId: 'SettlementBatch:scheduled',
    taskQueue: o.taskQueue ?? VOUCHER_TASK_QUEUE,
    args: [{} satisfies SettlementBatchInput],
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' } });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
  }
  return scheduleId;
}
