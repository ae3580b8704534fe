/**
 * Time-skipping tests of the voucher's deadlines with the real policy durations (3 and 6 calendar
 * months, reminders 14 and 3 days before), month-end handling and the annual quota.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Db } from '../db/connection';
import { buildVoucherInput } from '../api/voucher-input';
import { parseLocal, localIso } from '../policy/calendar';
import { POLICY_VERSIONS } from '../policy/policy';
import { voucherWorkflowId, VOUCHER_NO_PATTERN, type VoucherInput } from '../workflows/voucher/contract';
import { activateUpdate, claimUpdate, stateQuery } from '../workflows/voucher/messages';
import { voucherWorkflow } from '../workflows/voucher/workflow';
import { testPii } from './helpers/env';
import { timeSkippingWorld, type World } from './helpers/world';
import { makePerson } from './helpers/fixtures';

const policy = POLICY_VERSIONS[0]!;
const ZONE = policy.timeZone;
const MINUTE = 60_000;

let env: TestWorkflowEnvironment;
let db: Db;
let world: World;
let taskQueue: string;

beforeAll(async () => {
  world = await timeSkippingWorld('timers');
  ({ env, db } = world);
  taskQueue = world.taskQueue;
});

afterAll(async () => {
  await world?.stop();
});

async function startVoucher(o: Partial<VoucherInput> = {}) {
  const person = await makePerson(db, testPii);
  const input = await buildVoucherInput(db, {
    type: 'general',
    issuerDistrict: '330602',
    personRef: o.personRef ?? person.personRef,
    obtainedAt: await env.currentTimeMs(),
    awaitsClaim: o.awaitsClaim,
  });
  const full = { ...input, ...o };
  const handle = await env.client.workflow.start(voucherWorkflow, {
    workflowId: voucherWorkflowId(full.voucherNo),
    taskQueue,
    args: [full],
  });
  return { handle, input: full, person };
}

async function sleepUntil(ms: number) {
  const now = await env.currentTimeMs();
  if (ms > now) await env.sleep(ms - now);
}

async function notificationKinds(voucherNo: string): Promise<string[]> {
  const rows = await db('notifications').where({ voucher_no: voucherNo }).orderBy('kind');
  return rows.map((r: { kind: string }) => r.kind);
}

describe('voucher deadlines', () => {
  test('R3.1 R3.3: not activated by the activation deadline (obtained + 3 calendar months) → expired, with reminders 14 and 3 days before', async () => {
    const { handle, input } = await startVoucher();
    expect(input.voucherNo).toMatch(VOUCHER_NO_PATTERN);
    const s0 = await handle.query(stateQuery);
    expect(s0.status).toBe('issued');
    const days = (s0.activationDeadline! - input.obtainedAt!) / 86_400_000;
    expect(days).toBeGreaterThanOrEqual(89);
    expect(days).toBeLessThanOrEqual(92);
    expect(localIso(s0.activationDeadline!, ZONE).slice(11)).toBe(localIso(input.obtainedAt!, ZONE).slice(11));

    await sleepUntil(s0.activationDeadline! - MINUTE);
    expect((await handle.query(stateQuery)).status).toBe('issued');
    expect(await notificationKinds(input.voucherNo)).toEqual(['activation-deadline-14d', 'activation-deadline-3d']);

    await sleepUntil(s0.activationDeadline! + MINUTE);
    const final = await handle.result();
    expect(final.status).toBe('expired');
    expect(final.endReason).toContain('NOT_ACTIVATED_IN_TIME');
    expect(final.endedAt).toBeGreaterThanOrEqual(s0.activationDeadline!);
    // One row per reminder, never two, even after the deadline passed.
    expect(await notificationKinds(input.voucherNo)).toEqual(['activation-deadline-14d', 'activation-deadline-3d']);
    const rm = await db('vouchers').where({ voucher_no: input.voucherNo }).first();
    expect(rm.status).toBe('expired');
  });

  test('R3.1: activation one minute before the deadline succeeds; R3.2: use deadline = activation + 6 calendar months', async () => {
    const { handle } = await startVoucher();
    const s0 = await handle.query(stateQuery);
    await sleepUntil(s0.activationDeadline! - MINUTE);
    const s1 = await handle.executeUpdate(activateUpdate, { args: [{}] });
    expect(s1.status).toBe('activated');
    expect(s1.activatedAt).toBeLessThan(s0.activationDeadline!);
    const days = (s1.useDeadline! - s1.activatedAt!) / 86_400_000;
    expect(days).toBeGreaterThanOrEqual(181);
    expect(days).toBeLessThanOrEqual(184);
    expect(localIso(s1.useDeadline!, ZONE).slice(11)).toBe(localIso(s1.activatedAt!, ZONE).slice(11));
    // Past the activation deadline the voucher stays activated.
    await sleepUntil(s0.activationDeadline! + MINUTE);
    expect((await handle.query(stateQuery)).status).toBe('activated');
  });

  test('R3.1: activation at or after the deadline is refused by the validator and the voucher expires', async () => {
    const { handle } = await startVoucher();
    const s0 = await handle.query(stateQuery);
    await sleepUntil(s0.activationDeadline! - MINUTE);
    // Expire it: let the deadline pass.
    await sleepUntil(s0.activationDeadline! + MINUTE);
    await expect(handle.executeUpdate(activateUpdate, { args: [{}] })).rejects.toBeInstanceOf(Error);
    const res = await handle.result();
    expect(res.status).toBe('expired');
    expect(res.activatedAt).toBeUndefined();
  });

  test('R3.2 R3.3: activated but not used by the use deadline → expired, with use reminders', async () => {
    const { handle, input } = await startVoucher();
    const s1 = await handle.executeUpdate(activateUpdate, { args: [{}] });
    await sleepUntil(s1.useDeadline! - MINUTE);
    expect((await handle.query(stateQuery)).status).toBe('activated');
    await sleepUntil(s1.useDeadline! + MINUTE);
    const res = await handle.result();
    expect(res.status).toBe('expired');
    expect(res.endReason).toContain('NOT_USED_IN_TIME');
    expect(await notificationKinds(input.voucherNo)).toEqual(['use-deadline-14d', 'use-deadline-3d']);
  });

  test('R3.1 month end: obtained on Nov 30 → activation deadline Feb 28 (no Feb 30), same wall-clock time in Asia/Shanghai', async () => {
    await sleepUntil(parseLocal(`${new Date(await env.currentTimeMs()).getUTCFullYear() + 1}-11-30T10:00:00`, ZONE));
    const { handle } = await startVoucher();
    const s0 = await handle.query(stateQuery);
    const year = new Date(s0.obtainedAt!).getUTCFullYear() + 1;
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    expect(localIso(s0.activationDeadline!, ZONE).slice(0, 16)).toBe(`${year}-02-${leap ? '29' : '28'}T10:00`);
    await sleepUntil(s0.activationDeadline! - MINUTE);
    expect((await handle.executeUpdate(activateUpdate, { args: [{}] })).status).toBe('activated');
  });

  test('R3.2 month end: activated on Aug 31 → use deadline Feb 28/29 of the next year (leap year clamps to Feb 29)', async () => {
    // Walk the test server's clock to the next Aug 31 whose following February is in a leap year.
    let y = new Date(await env.currentTimeMs()).getUTCFullYear();
    while (!(((y + 1) % 4 === 0 && (y + 1) % 100 !== 0) || (y + 1) % 400 === 0)) y++;
    await sleepUntil(parseLocal(`${y}-08-31T09:30:00`, ZONE));
    const fresh = await startVoucher();
    const s1 = await fresh.handle.executeUpdate(activateUpdate, { args: [{}] });
    expect(localIso(s1.activatedAt!, ZONE).slice(0, 10)).toBe(`${y}-08-31`);
    expect(localIso(s1.useDeadline!, ZONE).slice(0, 10)).toBe(`${y + 1}-02-29`);
  });
});

describe('claim (R2.7)', () => {
  /** The refusal code of a refused Update. */
  async function refusal(p: Promise<unknown>): Promise<string | undefined> {
    try {
      await p;
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(WorkflowUpdateFailedError);
      return ((e as WorkflowUpdateFailedError).cause as { type?: string }).type;
    }
  }

  test('R2.7 R3.1: the activation clock starts when the holder claims the voucher, not at issue', async () => {
    const { handle, input } = await startVoucher({ awaitsClaim: true });
    const issuedAt = input.issuedAt!;
    expect(input.obtainedAt).toBeUndefined();
    const s0 = await handle.query(stateQuery);
    expect(s0).toMatchObject({ status: 'issued', issuedAt });
    expect(s0.activationDeadline).toBeUndefined();
    expect(localIso(s0.claimDeadline!, ZONE).slice(11)).toBe(localIso(issuedAt, ZONE).slice(11));
    // Not obtained yet: it cannot be activated.
    expect(await refusal(handle.executeUpdate(activateUpdate, { args: [{}] }))).toBe('VOUCHER_NOT_CLAIMED');

    // Two months later the holder claims it through Alipay (after the API's real-name check).
    await env.sleep(60 * 86_400_000);
    const claimedAt = await env.currentTimeMs();
    const s1 = await handle.executeUpdate(claimUpdate, { args: [{ channel: 'alipay' }] });
    expect(s1).toMatchObject({ status: 'claimed', claimChannel: 'alipay' });
    expect(s1.claimedAt).toBeGreaterThanOrEqual(claimedAt);
    expect(s1.obtainedAt).toBe(s1.claimedAt);
    // R3.1: three calendar months from the claim, same wall-clock time.
    const days = (s1.activationDeadline! - s1.claimedAt!) / 86_400_000;
    expect(days).toBeGreaterThanOrEqual(89);
    expect(days).toBeLessThanOrEqual(92);
    expect(localIso(s1.activationDeadline!, ZONE).slice(11)).toBe(localIso(s1.claimedAt!, ZONE).slice(11));
    const rows = await db('voucher_claims').where({ voucher_no: input.voucherNo });
    expect(rows).toEqual([expect.objectContaining({ channel: 'alipay', person_ref: input.personRef })]);
    // A second claim is refused by the workflow (the API answers it from the first).
    expect(await refusal(handle.executeUpdate(claimUpdate, { args: [{ channel: 'wechat' }] }))).toBe('VOUCHER_NOT_AWAITING_CLAIM');

    // Past issue + 3 months, where a clock started at issue would have run out, it still waits for activation.
    await sleepUntil(s0.claimDeadline! + 86_400_000);
    expect((await handle.query(stateQuery)).status).toBe('claimed');
    expect(await notificationKinds(input.voucherNo)).toEqual([]);
    // The activation reminders count from the claim.
    await sleepUntil(s1.activationDeadline! - MINUTE);
    expect(await notificationKinds(input.voucherNo)).toEqual(['activation-deadline-14d', 'activation-deadline-3d']);
    const s2 = await handle.executeUpdate(activateUpdate, { args: [{}] });
    expect(s2.status).toBe('activated');
    const rm = await db('vouchers').where({ voucher_no: input.voucherNo }).first();
    expect(rm).toMatchObject({ status: 'activated', claim_channel: 'alipay' });
    expect(new Date(rm.claimed_at).getTime()).toBe(s1.claimedAt);
    expect(new Date(rm.issued_at).getTime()).toBe(issuedAt);
  });

  test('R2.7 R3.3: not claimed within the claim window (issue + 3 calendar months) → expired, with claim reminders', async () => {
    const { handle, input } = await startVoucher({ awaitsClaim: true });
    const s0 = await handle.query(stateQuery);
    await sleepUntil(s0.claimDeadline! - MINUTE);
    expect((await handle.query(stateQuery)).status).toBe('issued');
    expect(await notificationKinds(input.voucherNo)).toEqual(['claim-deadline-14d', 'claim-deadline-3d']);
    await sleepUntil(s0.claimDeadline! + MINUTE);
    const res = await handle.result();
    expect(res).toMatchObject({ status: 'expired' });
    expect(res.endReason).toContain('NOT_CLAIMED_IN_TIME');
    expect(res.claimedAt).toBeUndefined();
    expect(await db('voucher_claims').where({ voucher_no: input.voucherNo })).toHaveLength(0);
    const rm = await db('vouchers').where({ voucher_no: input.voucherNo }).first();
    expect(rm).toMatchObject({ status: 'expired', activation_deadline: null, claimed_at: null });
  });

  test('R2.7 R3.1: a claim one minute before the claim deadline succeeds; the holder then has 3 more calendar months to activate', async () => {
    const { handle, input } = await startVoucher({ awaitsClaim: true });
    const s0 = await handle.query(stateQuery);
    await sleepUntil(s0.claimDeadline! - MINUTE);
    const s1 = await handle.executeUpdate(claimUpdate, { args: [{ channel: 'e-sscard' }] });
    expect(s1.status).toBe('claimed');
    expect(s1.activationDeadline! - s0.claimDeadline!).toBeGreaterThan(88 * 86_400_000);
    await sleepUntil(s0.claimDeadline! + MINUTE);
    expect((await handle.query(stateQuery)).status).toBe('claimed');
    await sleepUntil(s1.activationDeadline! + MINUTE);
    const res = await handle.result();
    expect(res).toMatchObject({ status: 'expired', claimChannel: 'e-sscard' });
    expect(res.endReason).toContain('NOT_ACTIVATED_IN_TIME');
    expect(await db('voucher_claims').where({ voucher_no: input.voucherNo })).toHaveLength(1);
  });
});

describe('annual quota', () => {
  test('R3.4: two concurrent activations for one person in one year: exactly one wins; the other is refused with ANNUAL_QUOTA_USED', async () => {
    const a = await startVoucher();
    const b = await startVoucher({ personRef: a.input.personRef });
    const results = await Promise.allSettled([
      a.handle.executeUpdate(activateUpdate, { args: [{}] }),
      b.handle.executeUpdate(activateUpdate, { args: [{}] }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((lost[0]!.reason as WorkflowUpdateFailedError).cause?.message)).toContain('ANNUAL_QUOTA_USED');
    const statuses = [(await a.handle.query(stateQuery)).status, (await b.handle.query(stateQuery)).status].sort();
    expect(statuses).toEqual(['activated', 'issued']);
    const rows = await db('activation_quota').where({ person_ref: a.input.personRef });
    expect(rows).toHaveLength(policy.vouchersPerPersonPerYear);
  });
});
