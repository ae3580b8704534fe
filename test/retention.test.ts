/** PIPL art. 28: raw check-in coordinates are erased after the policy's retention period; verdicts and distances stay. */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Db } from '../db/connection';
import { POLICY_VERSIONS } from '../policy/policy';
import { retentionWorkflow } from '../workflows/maintenance/workflow';
import { timeSkippingWorld, type World } from './helpers/world';
import { uid } from './helpers/fixtures';

const DAY = 86_400_000;
const retention = POLICY_VERSIONS[0]!.checkInCoordinateRetentionDays;
let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let taskQueue: string;

beforeAll(async () => {
  world = await timeSkippingWorld('retention');
  ({ env, db } = world);
  taskQueue = world.taskQueue;
});
afterAll(async () => {
  await world?.stop();
});

async function voucherEnded(endedDaysAgo: number | null): Promise<string> {
  const no = `SX330602${new Date().getUTCFullYear()}${String(Math.floor(Math.random() * 1e6)).padStart(6, '0')}`;
  const at = new Date().toISOString();
  await db('vouchers').insert({
    voucher_no: no, revision: 1, type: 'directed', status: endedDaysAgo === null ? 'in_training' : 'settled', issuer_district: '330602',
    person_ref: uid('P'), policy_version: 'SX-2022-11/v1', issued_at: at, obtained_at: at, activation_deadline: at, snapshot: '{}',
    ended_at: endedDaysAgo === null ? null : new Date(Date.now() - endedDaysAgo * DAY).toISOString(),
  });
  await db('check_in_attempts').insert({
    voucher_no: no, session_id: 'S01', principal_id: 'holder-x', method: 'qr_geo', verdict: 'accepted', distance_m: 42, coords_enc: 'v1:iv:tag:body', attempted_at: at,
  });
  return no;
}

test('coordinates of vouchers ended longer ago than the retention period are erased; verdict and distance stay', async () => {
  const old = await voucherEnded(retention + 1);
  const recent = await voucherEnded(retention - 1);
  const running2 = await voucherEnded(null);
  const res = await env.client.workflow.execute(retentionWorkflow, { taskQueue, workflowId: uid('Retention:test-') });
  expect(res.retentionDays).toBe(retention);
  expect(res.coordinatesPurged).toBeGreaterThanOrEqual(1);
  const rows = await db('check_in_attempts').whereIn('voucher_no', [old, recent, running2]);
  const by: Record<string, { coords_enc: string | null }> = Object.fromEntries(rows.map((r: { voucher_no: string; coords_enc: string | null }) => [r.voucher_no, r]));
  expect(by[old]).toMatchObject({ coords_enc: null, verdict: 'accepted', distance_m: 42 });
  expect(by[recent].coords_enc).not.toBeNull();
  expect(by[running2].coords_enc).not.toBeNull();
  // A rerun erases nothing more.
  const again = await env.client.workflow.execute(retentionWorkflow, { taskQueue, workflowId: uid('Retention:test-') });
  const after = await db('check_in_attempts').whereIn('voucher_no', [recent, running2]).whereNotNull('coords_enc');
  expect(after).toHaveLength(2);
  expect(again.retentionDays).toBe(retention);
});
