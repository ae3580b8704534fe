/** The Temporal Schedule of the retention job (client-side; never imported by a workflow). */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { VOUCHER_TASK_QUEUE } from '../voucher/contract';
import { RETENTION_SCHEDULE_ID, RETENTION_WORKFLOW_ID } from './contract';

export async function ensureRetentionSchedule(client: Client, taskQueue = VOUCHER_TASK_QUEUE): Promise<string> {
  const spec = { calendars: [{ hour: 3, minute: 30 }], timezone: 'Asia/Shanghai' };
  const action = { type: 'startWorkflow' as const, workflowType: 'retentionWorkflow', workflowId: RETENTION_WORKFLOW_ID, taskQueue, args: [] };
  try {
    await client.schedule.create({ scheduleId: RETENTION_SCHEDULE_ID, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' } });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    await client.schedule.getHandle(RETENTION_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action }));
  }
  return RETENTION_SCHEDULE_ID;
}
