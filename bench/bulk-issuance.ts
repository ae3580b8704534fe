/**
 * Figure 6 (BENCH_ONLY=bulk): bulk issuance. Vouchers issued per second from a trainee list of
 * BENCH_BULK_ROWS rows (default 10,000) through the project's real path — `POST /v1/trainee-lists`
 * on the real API (loopback port, institution key), which stores the rows and starts
 * `bulkIssuanceWorkflow`, whose `issueListChunk` activities decide eligibility, allocate numbers and
 * start one voucher workflow per row; timed from the upload until the job's workflow returns — ÷ bare
 * `client.workflow.start` of a trivial workflow per second (one timer; bench/trivial-workflow.ts, its
 * own worker with the same options) on the same dev server at the same concurrency as the starts
 * inside the job (parallel chunks × starts in flight per chunk). The baseline runs half before and
 * half after the real path, so drift in machine load hits both.
 *
 * Also counted: PostgreSQL queries issued by the worker and the API per issued voucher (knex `query`
 * events), the upload's own response time, and how long until every voucher is projected.
 */
import { cores, msPerVoucher, perVoucherTop, phaseProbe } from './phase-probe';
import { Client } from '@temporalio/client';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { createTrivialWorker } from './trivial-worker';
import type { DataConverter } from '@temporalio/common';
import { startVoucherWorkflow } from '../activities/issuance-activities';
import { createPrincipal } from '../api/auth';
import { buildVoucherInput, nextVoucherNos, policyInForceFromDb } from '../api/voucher-input';
import { localYear } from '../policy/calendar';
import { temporal } from '@temporalio/proto';
import type { Db } from '../db/connection';
import type { CodecKeys } from '../lib/codec';
import type { Pii } from '../lib/pii';
import { issuanceWorkflowId, LIST_PARALLEL_CHUNKS, type IssuanceProgress } from '../workflows/issuance/contract';
import { eventMs, round } from './lib';
import { closedLoop, httpRequest, keepAliveAgent } from './load';
import { startApiOnLoopback } from './api-overhead';

export interface BulkContext {
  db: Db;
  databaseUrl: string;
  temporalAddress: string;
  codecKeys: CodecKeys;
  client: Client;
  connection: NativeConnection;
  dataConverter: DataConverter;
  pii: Pii;
  /** The real worker's task queue: the job and its vouchers run there. */
  taskQueue: string;
  baselineTaskQueue: string;
  /** The dev server's Prometheus endpoint, when known: its request counters are read per phase. */
  temporalMetricsUrl?: string;
  workerOptions: Partial<WorkerOptions>;
  tmp: string;
  occupationCode: string;
  log: (m: string) => void;
}

export interface BulkSizes {
  rows: number;
  /** Starts in flight in the real path (parallel chunks × per-chunk concurrency); the baseline uses the same. */
  concurrency: number;
}

const DISTRICT = '330602';

/** A valid resident ID (GB 11643 check digit), unique per serial (area 330689, used by no test). */
function residentId(tag: string, serial: number): string {
  const body = `330689${tag}${String(serial).padStart(8, '0')}`;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * weights[i]!;
  return body + '10X98765432'[sum % 11];
}

/** Counts the queries a knex instance sends while `fn` runs. */
function countQueries(dbs: Db[]): { stop: () => number } {
  let n = 0;
  const on = () => n++;
  for (const d of dbs) d.on('query', on);
  return { stop: () => (dbs.forEach((d) => d.removeListener('query', on)), n) };
}

/**
 * Waits (up to 30 min) until the worker has taken every task of the vouchers started so far: the task
 * queue reports no backlog of workflow or activity tasks three times in a row, a second apart. (A list's
 * vouchers are in the read model as soon as their chunk has started them, so the read model cannot tell.)
 */
export async function backlogDrained(client: Client, taskQueue: string): Promise<boolean> {
  const T = temporal.api.enums.v1.TaskQueueType;
  const backlog = async (type: number) => {
    const r = await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType: type, reportStats: true });
    if (!r.stats) throw new Error('the server reports no task queue stats (DescribeTaskQueue report_stats)');
    return Number(r.stats.approximateBacklogCount ?? 0);
  };
  let quiet = 0;
  for (let k = 0; k < 1800; k++) {
    quiet = (await backlog(T.TASK_QUEUE_TYPE_WORKFLOW)) + (await backlog(T.TASK_QUEUE_TYPE_ACTIVITY)) === 0 ? quiet + 1 : 0;
    if (quiet >= 3) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/**
 * Where the job's time goes, from its own history: each `issueListChunk` activity's schedule-to-start
 * and run time, and how busy the parallel lanes were (sum of run times ÷ lanes × wall time).
 */
async function chunkProfile(client: Client, workflowId: string, wallMs: number) {
  const h = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<number, { type: string; at: number }>();
  const started = new Map<number, number>();
  const runs: number[] = [];
  const waits: number[] = [];
  for (const e of h.events ?? []) {
    const at = eventMs(e.eventTime as never);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(Number(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '', at });
    else if (e.activityTaskStartedEventAttributes) {
      const id = Number(e.activityTaskStartedEventAttributes.scheduledEventId);
      started.set(id, at);
    } else if (e.activityTaskCompletedEventAttributes) {
      const id = Number(e.activityTaskCompletedEventAttributes.scheduledEventId);
      const sch = scheduled.get(id);
      if (sch?.type !== 'issueListChunk') continue;
      const st = started.get(id) ?? at;
      waits.push(st - sch.at);
      runs.push(at - st);
    }
  }
  const mean = (xs: number[]) => round(xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length));
  return {
    chunks: runs.length,
    meanRunMs: mean(runs),
    meanScheduleToStartMs: mean(waits),
    // Chunks running on average over the list's wall time, out of LIST_PARALLEL_CHUNKS lanes.
    lanesBusy: round(runs.reduce((a, x) => a + x, 0) / wallMs, 3),
    lanes: LIST_PARALLEL_CHUNKS,
  };
}

export async function measureBulkIssuance(c: BulkContext, z: BulkSizes) {
  const tag = String(Math.floor(Math.random() * 900) + 100);
  c.log(`bulk: registering ${z.rows} persons (eligible for a directed voucher of ${DISTRICT})`);
  const trainees = Array.from({ length: z.rows }, (_, i) => ({ idNumber: residentId(tag, i + 1), name: `学员${i + 1}`, phone: `139${String(10_000_000 + i).slice(-8)}` }));
  const rows = trainees.map((t) => ({
    person_ref: c.pii.personRef(t.idNumber),
    id_number_enc: c.pii.encrypt(t.idNumber),
    id_number_last4: t.idNumber.slice(-4),
    name_enc: c.pii.encrypt(t.name),
    phone_enc: c.pii.encrypt(t.phone),
    employment_status: 'employed',
    employment_district: DISTRICT,
    civil_service: false,
  }));
  for (let i = 0; i < rows.length; i += 1000) await c.db('persons').insert(rows.slice(i, i + 1000));
  const institutionId = `INSTBULK${Date.now().toString(36)}`;
  await c.db('institutions').insert({ id: institutionId, name: 'Bench bulk institution', district: DISTRICT, status: 'approved' });
  const key = (await createPrincipal(c.db, { role: 'institution', institutionId, label: 'bench-bulk' })).key;

  // ---- baseline worker: trivial workflow, same options ------------------------------------
  const baseWorker = await createTrivialWorker(c, c.baselineTaskQueue);
  const baseRunning = baseWorker.run();
  let baseSeq = 0;
  async function baseline(n: number) {
    const r = await closedLoop(n, z.concurrency, async () => {
      await c.client.workflow.start('trivialWorkflow', { workflowId: `Trivial:${tag}:${++baseSeq}`, taskQueue: c.baselineTaskQueue, args: [] });
    });
    if (r.errors.length) throw new Error(`bulk baseline: ${r.errors.length} starts failed: ${r.errors[0]}`);
    return r;
  }

  const api = await startApiOnLoopback({ ...c, databaseUrl: c.databaseUrl });
  const agent = keepAliveAgent(4);
  try {
    const half = Math.ceil(z.rows / 2);
    c.log(`bulk: baseline, ${half} trivial workflow starts at concurrency ${z.concurrency}`);
    const b1 = await baseline(half);
    c.log(`  ${round((half * 1000) / b1.ms, 1)} starts/s`);

    const listId = `BENCH${tag}${Date.now().toString(36)}`;
    const body = JSON.stringify({ listId, district: DISTRICT, occupationCode: c.occupationCode, rows: trainees });
    c.log(`bulk: POST /v1/trainee-lists with ${z.rows} rows (${round(body.length / 1e6, 2)} MB JSON)`);
    const queries = countQueries([c.db]);
    const listProbe = await phaseProbe(c.temporalMetricsUrl);
    const t0 = performance.now();
    const res = await httpRequest(agent, api.port, { method: 'POST', path: '/v1/trainee-lists', headers: { authorization: `Bearer ${key}` }, body });
    const uploadMs = performance.now() - t0;
    if (res.status !== 202) throw new Error(`bulk: upload answered ${res.status}: ${res.body.slice(0, 300)}`);
    const done = (await c.client.workflow.getHandle(issuanceWorkflowId(listId)).result()) as IssuanceProgress;
    const realMs = performance.now() - t0;
    const duringList = await listProbe.stop();
    const workerQueries = queries.stop();
    const chunks = await chunkProfile(c.client, issuanceWorkflowId(listId), realMs);
    const apiQueries = api.queries();
    c.log(`  issued ${done.issued}/${done.total} in ${round(realMs / 1000, 1)} s: ${round((done.issued * 1000) / realMs, 1)} vouchers/s`);
    if (done.issued !== z.rows) throw new Error(`bulk: ${done.issued} of ${z.rows} rows issued (${JSON.stringify(done)})`);

    // Every row exactly one voucher.
    const distinct = await c.db('issuance_rows').where({ list_id: listId, outcome: 'issued' }).countDistinct<{ n: string }[]>({ n: 'voucher_no' });
    // Every voucher in the read model (written by the chunks), then the worker's backlog of the vouchers'
    // first tasks drained: the second baseline half must not run against it, or it would be slowed and
    // flatter the ratio.
    const inReadModel = Number((await c.db('vouchers').whereIn('voucher_no', c.db('issuance_rows').where({ list_id: listId }).select('voucher_no')).count<{ n: string }[]>({ n: '*' }))[0]!.n);
    const drainedMs = (await backlogDrained(c.client, c.taskQueue)) ? performance.now() - t0 : NaN;

    // Decomposition: the voucher starts alone — the same input and search attributes as the job's
    // (startVoucherWorkflow), on the same worker's queue, same concurrency, no list, no eligibility.
    const vsN = Math.min(half, 2000);
    c.log(`bulk: decomposition, ${vsN} bare voucher starts (startVoucherWorkflow) at concurrency ${z.concurrency}`);
    const now = Date.now();
    const policy = await policyInForceFromDb(c.db, now);
    const numbers = await nextVoucherNos(c.db, DISTRICT, localYear(now, policy.timeZone), vsN);
    const inputs = await Promise.all(
      numbers.map((voucherNo, k) =>
        buildVoucherInput(c.db, { type: 'directed', issuerDistrict: DISTRICT, personRef: rows[k]!.person_ref, occupationCode: c.occupationCode, obtainedAt: now, awaitsClaim: true, voucherNo, policy }),
      ),
    );
    const vsProbe = await phaseProbe(c.temporalMetricsUrl);
    const vs = await closedLoop(vsN, z.concurrency, async (k) => {
      await startVoucherWorkflow(c.client, c.taskQueue, inputs[k]!);
    });
    const duringVoucherStarts = await vsProbe.stop();
    if (vs.errors.length) throw new Error(`bulk decomposition: ${vs.errors.length} starts failed: ${vs.errors[0]}`);
    // The same starts through a client on the worker's native connection — what the activity's
    // Context.current().client is — instead of the bench's own client connection.
    const native = new Client({ connection: c.connection as never, namespace: 'default', dataConverter: c.dataConverter });
    const numbers2 = await nextVoucherNos(c.db, DISTRICT, localYear(now, policy.timeZone), vsN);
    const inputs2 = await Promise.all(
      numbers2.map((voucherNo, k) =>
        buildVoucherInput(c.db, { type: 'directed', issuerDistrict: DISTRICT, personRef: rows[k]!.person_ref, occupationCode: c.occupationCode, obtainedAt: now, awaitsClaim: true, voucherNo, policy }),
      ),
    );
    c.log(`bulk: decomposition, ${vsN} voucher starts through the worker's native connection`);
    const vsNative = await closedLoop(vsN, z.concurrency, async (k) => {
      await startVoucherWorkflow(native, c.taskQueue, inputs2[k]!);
    });
    if (vsNative.errors.length) throw new Error(`bulk decomposition (native): ${vsNative.errors.length} starts failed: ${vsNative.errors[0]}`);

    // The decomposition's vouchers run their first tasks on the same worker: wait for them as for the
    // list's, so that the second baseline half does not run against their backlog either.
    await backlogDrained(c.client, c.taskQueue);

    const b2n = z.rows - half;
    c.log(`bulk: baseline again, ${b2n} starts`);
    const b2 = await baseline(b2n);
    const baseMs = b1.ms + b2.ms;
    const realRate = (done.issued * 1000) / realMs;
    const baseRate = (z.rows * 1000) / baseMs;
    return {
      figure: 'bulk issuance: vouchers issued/s from a trainee list through POST /v1/trainee-lists + bulkIssuanceWorkflow ÷ bare workflow starts/s (trivial workflow), same server, same concurrency',
      goal: '≥ 0.8',
      rows: z.rows,
      concurrency: z.concurrency,
      ratio: round(realRate / baseRate, 3),
      real: {
        vouchersPerSecond: round(realRate, 1),
        seconds: round(realMs / 1000, 1),
        uploadResponseMs: round(uploadMs),
        // In the read model when the job returned (written by the chunks), of `issued`.
        inReadModelAtEnd: inReadModel,
        // Until the worker had taken every voucher's first tasks (no backlog on the queue).
        backlogDrainedSeconds: round(drainedMs / 1000, 1),
        issued: done.issued,
        distinctVoucherNumbers: Number(distinct[0]!.n),
        workerQueriesPerVoucher: round(workerQueries / done.issued, 2),
        apiQueries,
        chunks,
      },
      // The bench process's event-loop delay (it runs the worker: its activities, codec and core bridge) while
      // the list ran and while the bare voucher starts ran.
      eventLoopDelayMs: { list: duringList.lag, voucherStartsAlone: duringVoucherStarts.lag },
      // Every process's CPU (/proc, bench/proc-cpu.ts; `bench` is this process: the worker, its activities,
      // the bench's client) in ms per voucher started and in cores, by group, in the same two phases.
      cpuPerVoucherMs: { list: msPerVoucher(duringList.cpu, z.rows), voucherStartsAlone: msPerVoucher(duringVoucherStarts.cpu, vsN) },
      cpuCores: { list: cores(duringList.cpu, realMs), voucherStartsAlone: cores(duringVoucherStarts.cpu, vs.ms) },
      // The dev server's persistence and service requests per voucher started, by operation, in the same two
      // phases (from its Prometheus counters; the 12 largest of each).
      serverRequestsPerVoucher: c.temporalMetricsUrl
        ? { list: perVoucherTop(duringList.server, z.rows), voucherStartsAlone: perVoucherTop(duringVoucherStarts.server, vsN) }
        : null,
      voucherStartsAlone: {
        perSecond: round((vsN * 1000) / vs.ms, 1),
        overWorkerNativeConnectionPerSecond: round((vsN * 1000) / vsNative.ms, 1),
        starts: vsN,
        note: 'startVoucherWorkflow with real inputs and search attributes, same queue and concurrency, no list; once through the bench client, once through a client on the worker native connection (as the activity does)',
      },
      baseline: {
        startsPerSecond: round(baseRate, 1),
        seconds: round(baseMs / 1000, 1),
        halves: [round((half * 1000) / b1.ms, 1), round((b2n * 1000) / b2.ms, 1)],
      },
    };
  } finally {
    agent.destroy();
    await api.stop();
    baseWorker.shutdown();
    await baseRunning;
  }
}
