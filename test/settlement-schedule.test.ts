/**
 * R3.13: the daily settlement batch runs from a Temporal Schedule (dev server: the time-skipping
 * server has no schedules). `ensureSettlementSchedule` is idempotent; a triggered action runs
 * settlementBatchWorkflow. The worker here has stub settlement activities, so the shared test
 * database is not touched (the batch logic itself is covered in settlement-money.test.ts).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { SettlementBatchResult } from '../workflows/settlement/contract';
import { ensureSettlementSchedule } from '../workflows/settlement/schedule';
import { devServerEnv, quietRuntime, testDb, testWorker, uniqueTaskQueue } from './helpers/env';
import type { Db } from '../db/connection';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let db: Db;
const taskQueue = uniqueTaskQueue('schedule');
const calls: string[] = [];

beforeAll(async () => {
  quietRuntime();
  env = await devServerEnv();
  db = testDb();
  worker = await testWorker(env, db, taskQueue, {
    async settlementBatchDate() {
      calls.push('date');
      return '2031-05-06';
    },
    async settlementPrepareBatches(i: { date: string }) {
      calls.push(`prepare:${i.date}`);
      return { date: i.date, batchIds: ['B-330602-skills_upgrading_account-20310506'], created: [] };
    },
    async settlementRenderBatchFiles(i: { batchId: string }) {
      calls.push(`render:${i.batchId}`);
      return [];
    },
  });
  running = worker.run();
}, 180_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

test('R3.13: ensureSettlementSchedule creates one daily schedule (Asia/Shanghai) idempotently, and its action runs settlementBatchWorkflow', async () => {
  const scheduleId = `settlement-test-${taskQueue}`;
  expect(await ensureSettlementSchedule(env.client, { taskQueue, scheduleId, hour: 3 })).toBe(scheduleId);
  // A second call (every start) updates instead of failing.
  await ensureSettlementSchedule(env.client, { taskQueue, scheduleId, hour: 2, minute: 30 });
  const handle = env.client.schedule.getHandle(scheduleId);
  const d = await handle.describe();
  expect(d.spec.timezone).toBe('Asia/Shanghai');
  expect(d.spec.calendars).toEqual([expect.objectContaining({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] })]);
  expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'settlementBatchWorkflow', taskQueue });
  let ids = 0;
  for await (const s of env.client.schedule.list()) if (s.scheduleId === scheduleId) ids += 1;
  expect(ids).toBe(1);

  await handle.trigger();
  let workflowId: string | undefined;
  for (let i = 0; i < 100 && !workflowId; i++) {
    workflowId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
    if (!workflowId) await new Promise((r) => setTimeout(r, 200));
  }
  expect(workflowId).toMatch(/^SettlementBatch:scheduled/);
  const result = (await env.client.workflow.getHandle(workflowId!).result()) as SettlementBatchResult;
  expect(result).toMatchObject({ date: '2031-05-06', batchIds: ['B-330602-skills_upgrading_account-20310506'], created: [] });
  expect(calls).toEqual(['date', 'prepare:2031-05-06', 'render:B-330602-skills_upgrading_account-20310506']);
  await handle.delete();
}, 120_000);
