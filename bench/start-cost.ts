/**
 * Figure 6's decomposition (not in the default run; `BENCH_ONLY=starts`): what a voucher start costs
 * against the trivial start of the baseline, piece by piece. The same number of starts per variant, at
 * figure 6's concurrency, through the bench's client (same codec), rounds alternating the variants'
 * order; after each variant the bench waits until its worker has taken every first task, so no variant
 * runs against another's backlog:
 *   trivial                 the baseline: `trivialWorkflow` (one timer), no arguments
 *   + input                 the same, with a real voucher's input as its argument (the whole policy, encrypted)
 *   + search attributes     and the voucher's search attributes at start
 *   + summary and policies  and the voucher's static summary, ID reuse and conflict policies: every
 *                           option of `startVoucherWorkflow`, still the trivial workflow
 *   voucher                 `startVoucherWorkflow` itself on the real worker (a list voucher: projected at
 *                           issue, so its first task sets its claim timer and runs no activity)
 *   voucher via worker connection   the same through a client on the worker's own NativeConnection, as
 *                           the bulk-issuance activities start vouchers (`Context.current().client`)
 */
import { Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { createTrivialWorker } from './trivial-worker';
import { startVoucherWorkflow } from '../activities/issuance-activities';
import { buildVoucherInput, nextVoucherNos, policyInForceFromDb } from '../api/voucher-input';
import type { Db } from '../db/connection';
import { localYear } from '../policy/calendar';
import { VoucherStatus, voucherWorkflowId, type VoucherInput } from '../workflows/voucher/contract';
import { IssuerDistrictKey, OccupationCodeKey, VoucherStatusKey, VoucherTypeKey } from '../workflows/voucher/search-attributes';
import { backlogDrained } from './bulk-issuance';
import { eventMs, round } from './lib';
import { closedLoop } from './load';

export interface StartCostContext {
  db: Db;
  client: Client;
  connection: NativeConnection;
  dataConverter: DataConverter;
  workerOptions: Partial<WorkerOptions>;
  tmp: string;
  /** The real worker's queue (voucher workflows, its worker run by the caller) and the trivial workflow's (its worker run here, same options). */
  taskQueue: string;
  baselineTaskQueue: string;
  occupationCode: string;
  log: (m: string) => void;
}

const DISTRICT = '330602';
const ALL_VARIANTS = ['trivial', '+ input', '+ search attributes', '+ summary and policies', 'voucher', 'voucher via worker connection'] as const;
type Variant = (typeof ALL_VARIANTS)[number];
/** `BENCH_START_COST_VARIANTS`: a comma list of the variants above (default all); `trivial` is always measured. */
function variants(): Variant[] {
  const wanted = (process.env.BENCH_START_COST_VARIANTS || ALL_VARIANTS.join(',')).split(',').map((x) => x.trim());
  for (const w of wanted) if (!(ALL_VARIANTS as readonly string[]).includes(w)) throw new Error(`BENCH_START_COST_VARIANTS: unknown variant ${w}`);
  return ALL_VARIANTS.filter((v) => v === 'trivial' || wanted.includes(v));
}

export async function measureStartCost(c: StartCostContext, z: { starts: number; concurrency: number; rounds: number }) {
  const worker = await createTrivialWorker(c, c.baselineTaskQueue);
  return worker.runUntil(() => measure(c, z));
}

async function measure(c: StartCostContext, z: { starts: number; concurrency: number; rounds: number }) {
  const VARIANTS = variants();
  const workerClient = new Client({ connection: c.connection as never, namespace: 'default', dataConverter: c.dataConverter });
  const now = Date.now();
  const policy = await policyInForceFromDb(c.db, now);
  const year = localYear(now, policy.timeZone);
  let seq = 0;
  const tag = now.toString(36);
  async function inputs(n: number): Promise<VoucherInput[]> {
    const numbers = await nextVoucherNos(c.db, DISTRICT, year, n);
    return Promise.all(
      numbers.map((voucherNo) =>
        buildVoucherInput(c.db, { type: 'directed', issuerDistrict: DISTRICT, personRef: `P${'0'.repeat(40)}`, occupationCode: c.occupationCode, obtainedAt: now, awaitsClaim: true, voucherNo, policy, projectedAtIssue: true }),
      ),
    );
  }
  const attributes = (i: VoucherInput) => [
    { key: VoucherTypeKey, value: i.type },
    { key: VoucherStatusKey, value: VoucherStatus.Issued },
    { key: IssuerDistrictKey, value: i.issuerDistrict },
    { key: OccupationCodeKey, value: i.occupationCode! },
  ];
  async function run(v: Variant) {
    const ins = await inputs(z.starts);
    const ids: string[] = [];
    const trivial = (i: VoucherInput, extra: object) => {
      const workflowId = `StartCost:${tag}:${++seq}`;
      ids.push(workflowId);
      return c.client.workflow.start('trivialWorkflow', { workflowId, taskQueue: c.baselineTaskQueue, ...extra });
    };
    const start: Record<Variant, (i: VoucherInput) => Promise<unknown>> = {
      trivial: (i) => trivial(i, { args: [] }),
      '+ input': (i) => trivial(i, { args: [i] }),
      '+ search attributes': (i) => trivial(i, { args: [i], typedSearchAttributes: attributes(i) }),
      '+ summary and policies': (i) =>
        trivial(i, {
          args: [i],
          typedSearchAttributes: attributes(i),
          staticSummary: `${i.voucherNo} · ${i.type} · ${i.issuerDistrict}`,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        }),
      voucher: (i) => (ids.push(voucherWorkflowId(i.voucherNo)), startVoucherWorkflow(c.client, c.taskQueue, i)),
      'voucher via worker connection': (i) => (ids.push(voucherWorkflowId(i.voucherNo)), startVoucherWorkflow(workerClient, c.taskQueue, i)),
    };
    const r = await closedLoop(z.starts, z.concurrency, (k) => start[v](ins[k]!) as Promise<void>);
    if (r.errors.length) throw new Error(`start cost (${v}): ${r.errors.length} starts failed: ${r.errors[0]}`);
    // Every first task taken before the next variant starts.
    await backlogDrained(c.client, c.baselineTaskQueue);
    await backlogDrained(c.client, c.taskQueue);
    return { rate: (z.starts * 1000) / r.ms, firstTask: await firstTasks(ids.filter((_, k) => k % Math.ceil(ids.length / 25) === 0)) };
  }
  /** From a sample of histories: the first workflow task's wait (scheduled → started) and run (started → completed). */
  async function firstTasks(sample: string[]) {
    const waits: number[] = [];
    const runs: number[] = [];
    for (const id of sample) {
      const h = await c.client.workflow.getHandle(id).fetchHistory();
      const ev = h.events ?? [];
      const sch = ev.find((e) => e.workflowTaskScheduledEventAttributes);
      const st = ev.find((e) => e.workflowTaskStartedEventAttributes);
      const done = ev.find((e) => e.workflowTaskCompletedEventAttributes);
      if (!sch || !st || !done) continue;
      waits.push(eventMs(st.eventTime as never) - eventMs(sch.eventTime as never));
      runs.push(eventMs(done.eventTime as never) - eventMs(st.eventTime as never));
    }
    const mean = (xs: number[]) => round(xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length), 1);
    return { sampled: runs.length, meanWaitMs: mean(waits), meanRunMs: mean(runs) };
  }
  const perVariant = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Partial<Record<Variant, number[]>>;
  const firstTask = Object.fromEntries(VARIANTS.map((v) => [v, [] as unknown[]])) as Partial<Record<Variant, unknown[]>>;
  for (let r = 0; r < z.rounds; r++) {
    const order = r % 2 === 0 ? [...VARIANTS] : [...VARIANTS].reverse();
    for (const v of order) {
      const { rate, firstTask: f } = await run(v);
      perVariant[v]!.push(round(rate, 1));
      firstTask[v]!.push(f);
      c.log(`starts: round ${r + 1}, ${v}: ${round(rate, 1)}/s; first task ${JSON.stringify(f)}`);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const base = mean(perVariant.trivial!);
  return {
    figure: "figure 6's decomposition: starts/s of a voucher start, piece by piece, ÷ the trivial start of the baseline",
    starts: z.starts,
    concurrency: z.concurrency,
    rounds: z.rounds,
    inputBytes: Buffer.byteLength(JSON.stringify((await inputs(1))[0])),
    startsPerSecond: perVariant,
    // The first workflow task of a sample of each variant's workflows: how long it waited for the worker, how long it ran.
    firstTask,
    ratioToTrivial: Object.fromEntries(VARIANTS.map((v) => [v, round(mean(perVariant[v]!) / base, 3)])),
  };
}
