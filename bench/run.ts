/**
 * `npm run bench` (not part of `npm test`): measures the voucher engine side by side with a skeleton
 * baseline on ONE Temporal dev server (SQLite on disk) with the same worker options, and writes
 * bench/results/<figure>.json plus the generated table of docs/PERFORMANCE.md.
 *
 * Provisioning is the tests' own: lib/temporal-binaries.ts for the CLI, a throwaway database on
 * DATABASE_URL's server (or an embedded PostgreSQL when unset), db/migrate.ts.
 *
 * Sizes (env): BENCH_LIFECYCLES (200), BENCH_CONCURRENCY (20), BENCH_ROUNDS (4, real and skeleton
 * alternate), BENCH_WARMUP (10), BENCH_CHECKINS (20), BENCH_CHECKINS_SCALED (60),
 * BENCH_SCALED_LIFECYCLES (100), BENCH_COLD_LIFECYCLES (100), BENCH_COLD_CACHE (2),
 * BENCH_MEMORY_VOUCHERS (200), BENCH_SETTLEMENT_ROWS (100000), BENCH_HISTORY_SAMPLE (5),
 * BENCH_API_CLIENTS (200), BENCH_API_VOUCHERS (200), BENCH_API_ROUNDS (2), BENCH_API_WARMUP (5 sessions per voucher and side, before the rounds), BENCH_API_SESSIONS (5 per round
 * and side), BENCH_BULK_ROWS (10000), BENCH_BULK_CONCURRENCY (32),
 * BENCH_COST_LIFECYCLES (5), BENCH_START_COST_STARTS (1000), BENCH_START_COST_ROUNDS (2),
 * BENCH_START_COST_VARIANTS (bench/start-cost.ts), BENCH_ONLY (comma list of: efficiency,scaling,cold,
 * memory,settlement,api,bulk,costs — the default — and starts), BENCH_TEMPORAL_STORE (file |
 * memory), BENCH_SQLITE_PRAGMAS (e.g. journal_mode=wal,synchronous=normal), BENCH_TAG (experiments:
 * results under bench/results/<tag>/, docs untouched).
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { buildVoucherInput } from '../api/voucher-input';
import { startVoucherWorkflow } from '../activities/issuance-activities';
import { createDb, type Db } from '../db/connection';
import { migrateLatest } from '../db/migrate';
import { dataConverter, parseCodecKeys } from '../lib/codec';
import { Pii } from '../lib/pii';
import { createDatabase, dropDatabase, freePort, startEmbeddedPostgres, type RunningPostgres } from '../lib/postgres';
import { executableFor, provisionTemporal } from '../lib/temporal-binaries';
import { bundleWorkflowsTo } from '../scripts/bundle-workflows';
import { createVoucherWorker, DEFAULT_WORKER_TUNING } from '../workers/voucher-worker';
import { VoucherStatus, type VoucherInput } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate } from '../workflows/voucher/messages';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../workflows/voucher/search-attributes';
import { createSkeletonActivities } from './skeleton-activities';
import type { skeletonVoucherWorkflow } from './skeleton-workflow';
import { envInt, fullGc, percentile, pool, round, summary, timed } from './lib';
import { measureApiOverhead, type InTrainingVoucher } from './api-overhead';
import { measureBulkIssuance } from './bulk-issuance';
import { addPhase, msPerVoucher, newPhaseTotals, perVoucherTop, phaseProbe } from './phase-probe';
import { temporal } from '@temporalio/proto';
import { measureStartCost } from './start-cost';
import { measureSettlement as measureSettlementBatch } from './settlement';
import { carryOverFigures } from './carry-over';
import { measureVoucherCosts } from './voucher-costs';

const ROOT = path.resolve(__dirname, '..');
/** BENCH_TAG=x writes bench/results/x/*.json and leaves docs/PERFORMANCE.md alone (experiments). */
const TAG = (process.env.BENCH_TAG || '').replace(/[^A-Za-z0-9_.-]/g, '');
const RESULTS = path.join(__dirname, 'results', TAG);
const DOC = path.join(ROOT, 'docs', 'PERFORMANCE.md');

const SIZES = {
  lifecycles: envInt('BENCH_LIFECYCLES', 200),
  concurrency: envInt('BENCH_CONCURRENCY', 20),
  rounds: Math.max(1, envInt('BENCH_ROUNDS', 4)),
  warmup: envInt('BENCH_WARMUP', 10),
  checkIns: envInt('BENCH_CHECKINS', 20),
  checkInsScaled: envInt('BENCH_CHECKINS_SCALED', 60),
  scaledLifecycles: envInt('BENCH_SCALED_LIFECYCLES', 100),
  coldLifecycles: envInt('BENCH_COLD_LIFECYCLES', 100),
  coldCache: envInt('BENCH_COLD_CACHE', 2),
  memoryVouchers: envInt('BENCH_MEMORY_VOUCHERS', 200),
  settlementRows: envInt('BENCH_SETTLEMENT_ROWS', 100_000),
  historySample: envInt('BENCH_HISTORY_SAMPLE', 5),
  apiClients: envInt('BENCH_API_CLIENTS', 200),
  apiVouchers: envInt('BENCH_API_VOUCHERS', 200),
  apiRounds: Math.max(1, envInt('BENCH_API_ROUNDS', 2)),
  apiSessionsPerRound: Math.max(1, envInt('BENCH_API_SESSIONS', 5)),
  apiWarmupSessions: Math.max(1, envInt('BENCH_API_WARMUP', 5)),
  bulkRows: envInt('BENCH_BULK_ROWS', 10_000),
  // Starts in flight inside a bulk-issuance job: parallel chunks × starts per chunk (see bench/bulk-issuance.ts).
  bulkConcurrency: envInt('BENCH_BULK_CONCURRENCY', 32),
  costLifecycles: envInt('BENCH_COST_LIFECYCLES', 5),
  startCostStarts: envInt('BENCH_START_COST_STARTS', 1000),
  startCostRounds: envInt('BENCH_START_COST_ROUNDS', 2),
};
/** `file` (default: SQLite on disk, like a persistent dev server) or `memory`. */
const STORE = process.env.BENCH_TEMPORAL_STORE === 'memory' ? 'memory' : 'file';
/**
 * SQLite pragmas for the dev server. Default `journal_mode=wal,synchronous=normal`: measured ~4× the
 * throughput of the default rollback journal with synchronous=full on this machine (see
 * docs/PERFORMANCE.md); `none` for SQLite's defaults.
 */
const PRAGMAS_SPEC = process.env.BENCH_SQLITE_PRAGMAS ?? 'journal_mode=wal,synchronous=normal';
const PRAGMAS = (PRAGMAS_SPEC === 'none' ? '' : PRAGMAS_SPEC).split(',').map((s) => s.trim()).filter(Boolean);
const ONLY = new Set((process.env.BENCH_ONLY || 'efficiency,scaling,cold,memory,settlement,api,bulk,costs').split(',').map((s) => s.trim()));

/**
 * Identical for the real and the skeleton worker (and figure 6's baseline worker) in every phase (only
 * the cache size varies, in phase 5): the production worker's own settings (DEFAULT_WORKER_TUNING),
 * then `BENCH_WORKER_OPTIONS`, JSON of worker options to try (e.g. `{"maxConcurrentWorkflowTaskExecutions":10}`).
 */
const WORKER_OPTIONS: Partial<WorkerOptions> = { ...DEFAULT_WORKER_TUNING, ...(JSON.parse(process.env.BENCH_WORKER_OPTIONS || '{}') as Partial<WorkerOptions>) };
/**
 * Dev server dynamic config, `BENCH_DYNAMIC_CONFIG` as `key=value,key=value` (values as the CLI's
 * `--dynamic-config-value` takes them, JSON: numbers, `true`, `"text"`); none by default.
 */
const DYNAMIC_CONFIG = (process.env.BENCH_DYNAMIC_CONFIG ?? '').split(',').map((s) => s.trim()).filter(Boolean);

const ISSUER = '330604';
const SESSION_MINUTES = 90;
const RESULT_TIMEOUT_MS = 120_000;

const log = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

interface Fixture {
  personRef: string;
  classId: string;
  institutionId: string;
  sessionIds: string[];
}

interface Latencies {
  activate: number[];
  enrol: number[];
  signal: number[];
  lifecycle: number[];
}
const newLatencies = (): Latencies => ({ activate: [], enrol: [], signal: [], lifecycle: [] });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const bins = provisionTemporal(log);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'voucher-bench-'));
  const runId = `${Date.now().toString(36)}_${process.pid}`;

  // ---- PostgreSQL: a throwaway database, like the tests ------------------------------------
  let serverUrl = process.env.DATABASE_URL;
  let embedded: RunningPostgres | undefined;
  if (!serverUrl) {
    embedded = await startEmbeddedPostgres(path.join(tmp, 'pg'), await freePort());
    serverUrl = embedded.serverUrl;
  }
  const dbName = `vouchers_bench_${runId}`;
  const url = await createDatabase(serverUrl, dbName);
  const db = createDb(url, { max: 20 });
  await migrateLatest(db);

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const codecKeySpec = `bench:${randomBytes(32).toString('hex')}`;
  const codecKeys = parseCodecKeys(codecKeySpec);
  const converter = dataConverter(codecKeys);
  const temporalDb = STORE === 'memory' ? undefined : path.join(tmp, 'temporal.sqlite');
  log(`starting the Temporal dev server (SQLite ${temporalDb ? `at ${temporalDb}` : 'in memory'}; pragmas: ${PRAGMAS.join(', ') || 'none'}; dynamic config: ${DYNAMIC_CONFIG.join(', ') || 'none'})`);
  // The dev server's Prometheus endpoint on a known port: figures 1 and 6 read its counters per phase.
  const temporalMetricsPort = await freePort();
  const temporalMetricsUrl = `http://127.0.0.1:${temporalMetricsPort}/metrics`;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: executableFor(bins.cli),
      searchAttributes: ALL_SEARCH_ATTRIBUTE_KEYS,
      ...(temporalDb ? { dbFilename: temporalDb } : {}),
      extraArgs: [
        ...PRAGMAS.flatMap((p) => ['--sqlite-pragma', p]),
        ...DYNAMIC_CONFIG.flatMap((d) => ['--dynamic-config-value', d]),
        '--metrics-port',
        String(temporalMetricsPort),
      ],
    },
    client: { dataConverter: converter },
  });
  const client = env.client;

  log('bundling the voucher workflows and the skeleton');
  const voucherBundle = await bundleWorkflowsTo(path.join(tmp, 'voucher-bundle.js'));
  const skeletonBundle = path.join(tmp, 'skeleton-bundle.js');
  {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('./skeleton-workflow'),
      failureConverterPath: require.resolve('../workflows/failure-converter'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
    });
    writeFileSync(skeletonBundle, code);
  }

  const machine = machineInfo(bins.cli);
  machine.postgres = String((await db.raw('show server_version')).rows[0].server_version);
  const figures: Record<string, unknown> = {};
  const piiKeys = { personRefKey: randomBytes(32).toString('hex'), piiKey: randomBytes(32).toString('hex') };
  const pii = new Pii(piiKeys);
  const fixtures = new FixtureFactory(db, pii);
  await fixtures.init();

  let tqSeq = 0;
  const tq = (name: string) => `bench-${name}-${runId}-${++tqSeq}`;

  async function realWorker(taskQueue: string, extra: Partial<WorkerOptions> = {}) {
    const worker = await createVoucherWorker({
      connection: env.nativeConnection,
      db,
      codecKeys,
      taskQueue,
      workflowBundlePath: voucherBundle,
      options: { ...WORKER_OPTIONS, ...extra },
    });
    const running = worker.run();
    return { worker, stop: async () => (worker.shutdown(), await running) };
  }
  async function skeletonWorker(taskQueue: string, extra: Partial<WorkerOptions> = {}) {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      workflowBundle: { codePath: skeletonBundle },
      activities: createSkeletonActivities(),
      dataConverter: converter,
      ...WORKER_OPTIONS,
      ...extra,
    });
    const running = worker.run();
    return { worker, stop: async () => (worker.shutdown(), await running) };
  }

  /** One complete voucher lifecycle through the client, as the API drives it. */
  async function realLifecycle(taskQueue: string, fx: Fixture, lat: Latencies, opts: { complete?: boolean } = {}): Promise<string> {
    const t0 = performance.now();
    const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: ISSUER, personRef: fx.personRef, occupationCode: fixtures.occupationCode, obtainedAt: Date.now() });
    // Started exactly as the API starts a voucher (options, search attributes, summary).
    const h = await startVoucherWorkflow(client, taskQueue, input);
    await timed(lat.activate, () => h.executeUpdate(activateUpdate, { args: [{ channel: 'bench' }] }));
    await timed(lat.enrol, () => h.executeUpdate(enrolUpdate, { args: [{ classId: fx.classId, institutionId: fx.institutionId, review: { passed: true } }] }));
    for (const sessionId of fx.sessionIds) {
      await timed(lat.signal, () => h.signal(checkInSignal, { sessionId, verifiedMinutes: SESSION_MINUTES, at: Date.now() }));
    }
    if (opts.complete === false) return h.workflowId;
    await h.signal(completeSignal, { assessmentPassed: true });
    const end = await withTimeout(h.result(), RESULT_TIMEOUT_MS, h.workflowId);
    if (end.status !== VoucherStatus.Settled) throw new Error(`${h.workflowId} ended ${end.status} (${end.endReason ?? ''})`);
    lat.lifecycle.push(performance.now() - t0);
    return h.workflowId;
  }

  let skelSeq = 0;
  async function skeletonLifecycle(taskQueue: string, template: VoucherInput, fx: Fixture, lat: Latencies): Promise<string> {
    const t0 = performance.now();
    const input: VoucherInput = { ...template, voucherNo: `${template.voucherNo}-${++skelSeq}`, personRef: fx.personRef };
    const h = await client.workflow.start<typeof skeletonVoucherWorkflow>('skeletonVoucherWorkflow', {
      workflowId: `Skeleton:${runId}:${input.voucherNo}`,
      taskQueue,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    });
    await timed(lat.activate, () => h.executeUpdate(activateUpdate, { args: [{ channel: 'bench' }] }));
    await timed(lat.enrol, () => h.executeUpdate(enrolUpdate, { args: [{ classId: fx.classId, institutionId: fx.institutionId, review: { passed: true } }] }));
    for (const sessionId of fx.sessionIds) {
      await timed(lat.signal, () => h.signal(checkInSignal, { sessionId, verifiedMinutes: SESSION_MINUTES, at: Date.now() }));
    }
    await h.signal(completeSignal, { assessmentPassed: true });
    const end = await withTimeout(h.result(), RESULT_TIMEOUT_MS, h.workflowId);
    if (end.status !== 'settled') throw new Error(`${h.workflowId} ended ${end.status}`);
    lat.lifecycle.push(performance.now() - t0);
    return h.workflowId;
  }

  async function historyEvents(ids: string[]): Promise<{ mean: number; perVoucher: number[]; byType: Record<string, number> }> {
    const perVoucher: number[] = [];
    const byType = new Map<string, number>();
    for (const id of ids) {
      const h = await client.workflow.getHandle(id).fetchHistory();
      perVoucher.push(h.events?.length ?? 0);
      for (const e of h.events ?? []) {
        const t = temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType);
        byType.set(t, (byType.get(t) ?? 0) + 1);
      }
    }
    const n = Math.max(1, perVoucher.length);
    return {
      mean: round(perVoucher.reduce((a, x) => a + x, 0) / n, 1),
      perVoucher,
      byType: Object.fromEntries([...byType].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k.replace(/^EVENT_TYPE_/, ''), round(v / n, 1)])),
    };
  }

  /** Runs `n` real lifecycles at the bench's concurrency; returns the figures of the run. */
  async function runReal(taskQueue: string, n: number, checkIns: number, lat = newLatencies()) {
    const fxs = await fixtures.take(n, checkIns);
    const ids: string[] = [];
    const ms = await pool(n, SIZES.concurrency, async (i) => {
      ids.push(await realLifecycle(taskQueue, fxs[i]!, lat));
    });
    return { n, ms, ids, lat };
  }
  async function runSkeleton(taskQueue: string, n: number, checkIns: number, template: VoucherInput, lat = newLatencies()) {
    const fxs = await fixtures.take(n, checkIns, { fake: true });
    const ids: string[] = [];
    const ms = await pool(n, SIZES.concurrency, async (i) => {
      ids.push(await skeletonLifecycle(taskQueue, template, fxs[i]!, lat));
    });
    return { n, ms, ids, lat };
  }
  const perSec = (n: number, ms: number) => round((n * 1000) / ms, 2);
  const messagesPerLifecycle = (checkIns: number) => 1 /* start */ + 2 /* updates */ + checkIns + 1 /* complete */;

  try {
    const realTq = tq('real');
    const skelTq = tq('skeleton');
    let real = await realWorker(realTq);
    const skel = await skeletonWorker(skelTq);
    const template = await buildVoucherInput(db, { type: 'directed', issuerDistrict: ISSUER, personRef: 'P' + '0'.repeat(40), occupationCode: fixtures.occupationCode, obtainedAt: Date.now() });

    log(`warm-up: ${SIZES.warmup} lifecycles each`);
    await runReal(realTq, SIZES.warmup, SIZES.checkIns);
    await runSkeleton(skelTq, SIZES.warmup, SIZES.checkIns, template);

    // ---- 1 + 4: lifecycle efficiency and Update latency ------------------------------------
    let real20: { n: number; ms: number; ids: string[] } | undefined;
    if (ONLY.has('efficiency')) {
      const realLat = newLatencies();
      const skelLat = newLatencies();
      let realMs = 0;
      let skelMs = 0;
      const realIds: string[] = [];
      const skelIds: string[] = [];
      const per = Math.ceil(SIZES.lifecycles / SIZES.rounds);
      const roundRatios: { real: number; skeleton: number; ratio: number }[] = [];
      // Where each side's CPU and server requests go (every process's CPU from /proc, the dev server's
      // counters by operation), summed over the rounds: what the real lifecycle pays that the skeleton does not.
      const spent = { real: newPhaseTotals(), skeleton: newPhaseTotals() };
      for (let r = 0; r < SIZES.rounds; r++) {
        log(`efficiency round ${r + 1}/${SIZES.rounds}: ${per} real lifecycles at concurrency ${SIZES.concurrency}`);
        let probe = await phaseProbe(temporalMetricsUrl);
        const a = await runReal(realTq, per, SIZES.checkIns, realLat);
        addPhase(spent.real, await probe.stop());
        realMs += a.ms;
        realIds.push(...a.ids);
        log(`  real: ${perSec(a.n, a.ms)}/s; skeleton next`);
        probe = await phaseProbe(temporalMetricsUrl);
        const b = await runSkeleton(skelTq, per, SIZES.checkIns, template, skelLat);
        addPhase(spent.skeleton, await probe.stop());
        skelMs += b.ms;
        skelIds.push(...b.ids);
        log(`  skeleton: ${perSec(b.n, b.ms)}/s`);
        roundRatios.push({ real: perSec(a.n, a.ms), skeleton: perSec(b.n, b.ms), ratio: round(b.ms / a.ms, 3) });
      }
      const n = per * SIZES.rounds;
      real20 = { n, ms: realMs, ids: realIds };
      const realRate = perSec(n, realMs);
      const skelRate = perSec(n, skelMs);
      const realEvents = await historyEvents(realIds.slice(0, SIZES.historySample));
      const skelEvents = await historyEvents(skelIds.slice(0, SIZES.historySample));
      figures.efficiency = {
        figure: 'lifecycle efficiency: real voucher lifecycles/s ÷ skeleton lifecycles/s',
        goal: '≥ 0.9',
        ratio: round(realRate / skelRate, 3),
        real: { lifecycles: n, seconds: round(realMs / 1000), perSecond: realRate, messagesPerSecond: perSec(n * messagesPerLifecycle(SIZES.checkIns), realMs), lifecycleMs: summary(realLat.lifecycle), historyEvents: realEvents.mean },
        skeleton: { lifecycles: n, seconds: round(skelMs / 1000), perSecond: skelRate, messagesPerSecond: perSec(n * messagesPerLifecycle(SIZES.checkIns), skelMs), lifecycleMs: summary(skelLat.lifecycle), historyEvents: skelEvents.mean },
        checkIns: SIZES.checkIns,
        concurrency: SIZES.concurrency,
        rounds: SIZES.rounds,
        // Real and skeleton alternate in rounds so that load from elsewhere on the machine hits both;
        // the spread of the per-round ratios shows how much such load moved the figure.
        roundRatios,
        medianRoundRatio: round(percentile(roundRatios.map((r) => r.ratio), 50), 3),
        cpuPerLifecycleMs: { real: msPerVoucher(spent.real.cpu, n), skeleton: msPerVoucher(spent.skeleton.cpu, n) },
        serverRequestsPerLifecycle: { real: perVoucherTop(spent.real.server, n), skeleton: perVoucherTop(spent.skeleton.server, n) },
        historyEventsByType: { real: realEvents.byType, skeleton: skelEvents.byType },
      };
      const act = summary(realLat.activate);
      const enr = summary(realLat.enrol);
      const sig = summary(realLat.signal);
      figures.updateLatency = {
        figure: 'Update round trip (client executeUpdate) ÷ signal ack (client signal), same run, same concurrency',
        ratios: {
          activateP50: round(act.p50 / sig.p50, 2),
          activateP99: round(act.p99 / sig.p99, 2),
          enrolP50: round(enr.p50 / sig.p50, 2),
          enrolP99: round(enr.p99 / sig.p99, 2),
        },
        realMs: { activate: act, enrol: enr, signal: sig },
        skeletonMs: { activate: summary(skelLat.activate), enrol: summary(skelLat.enrol), signal: summary(skelLat.signal) },
        concurrency: SIZES.concurrency,
      };
      log(`efficiency ratio ${(figures.efficiency as { ratio: number }).ratio}`);
    }

    // ---- 2: check-in scaling ---------------------------------------------------------------
    if (ONLY.has('scaling')) {
      const n = SIZES.scaledLifecycles;
      log(`scaling: ${n} lifecycles with ${SIZES.checkIns} then ${SIZES.checkInsScaled} check-ins`);
      const a = await runReal(realTq, n, SIZES.checkIns);
      const b = await runReal(realTq, n, SIZES.checkInsScaled);
      const evA = await historyEvents(a.ids.slice(0, SIZES.historySample));
      const evB = await historyEvents(b.ids.slice(0, SIZES.historySample));
      const rateA = perSec(n, a.ms);
      const rateB = perSec(n, b.ms);
      figures.checkInScaling = {
        figure: `throughput with ${SIZES.checkInsScaled} check-ins ÷ with ${SIZES.checkIns}; history events per voucher`,
        target: 'events linear in check-ins, ≤ 4 per check-in',
        ratio: round(rateB / rateA, 3),
        messageRatio: round(perSec(n * messagesPerLifecycle(SIZES.checkInsScaled), b.ms) / perSec(n * messagesPerLifecycle(SIZES.checkIns), a.ms), 3),
        at: {
          [SIZES.checkIns]: { lifecycles: n, seconds: round(a.ms / 1000), perSecond: rateA, messagesPerSecond: perSec(n * messagesPerLifecycle(SIZES.checkIns), a.ms), historyEvents: evA.mean, sample: evA.perVoucher },
          [SIZES.checkInsScaled]: { lifecycles: n, seconds: round(b.ms / 1000), perSecond: rateB, messagesPerSecond: perSec(n * messagesPerLifecycle(SIZES.checkInsScaled), b.ms), historyEvents: evB.mean, sample: evB.perVoucher },
        },
        eventsPerCheckIn: round((evB.mean - evA.mean) / (SIZES.checkInsScaled - SIZES.checkIns), 2),
        fixedEvents: round(evA.mean - ((evB.mean - evA.mean) / (SIZES.checkInsScaled - SIZES.checkIns)) * SIZES.checkIns, 1),
      };
      log(`scaling ratio ${(figures.checkInScaling as { ratio: number }).ratio}, events/check-in ${(figures.checkInScaling as { eventsPerCheckIn: number }).eventsPerCheckIn}`);
    }

    // ---- 5a: cold cache ---------------------------------------------------------------------
    if (ONLY.has('cold')) {
      const n = SIZES.coldLifecycles;
      await real.stop();
      const coldTq = tq('cold');
      log(`cold cache: ${n} lifecycles with maxCachedWorkflows=${SIZES.coldCache}`);
      const cold = await realWorker(coldTq, { maxCachedWorkflows: SIZES.coldCache, maxConcurrentWorkflowTaskExecutions: Math.min(SIZES.coldCache, WORKER_OPTIONS.maxConcurrentWorkflowTaskExecutions ?? Infinity) });
      const c = await runReal(coldTq, n, SIZES.checkIns);
      await cold.stop();
      log(`cold cache: ${n} lifecycles with the default cache, fresh worker`);
      const warmTq = tq('warm');
      real = await realWorker(warmTq);
      const w = await runReal(warmTq, n, SIZES.checkIns);
      figures.coldCache = {
        figure: `throughput with maxCachedWorkflows=${SIZES.coldCache} ÷ default cache (fresh worker each)`,
        ratio: round(perSec(n, c.ms) / perSec(n, w.ms), 3),
        cold: { maxCachedWorkflows: SIZES.coldCache, lifecycles: n, seconds: round(c.ms / 1000), perSecond: perSec(n, c.ms), lifecycleMs: summary(c.lat.lifecycle), signalMs: summary(c.lat.signal) },
        warm: { maxCachedWorkflows: 'default', lifecycles: n, seconds: round(w.ms / 1000), perSecond: perSec(n, w.ms), lifecycleMs: summary(w.lat.lifecycle), signalMs: summary(w.lat.signal) },
      };
      log(`cold cache ratio ${(figures.coldCache as { ratio: number }).ratio}`);
    }
    // ---- 3: API overhead (bench/api-overhead.ts) --------------------------------------------
    if (ONLY.has('api')) {
      const apiTq = tq('api');
      const w = await realWorker(apiTq);
      try {
        figures.apiOverhead = await measureApiOverhead(
          {
            db,
            databaseUrl: url,
            temporalAddress: env.address,
            temporalMetricsUrl,
            codecKeys,
            client,
            pii,
            taskQueue: apiTq,
            apiProcess: { codecKeys: codecKeySpec, ...piiKeys },
            sessionMinutes: SESSION_MINUTES,
            log,
            prepare: async (n, sessions) => {
              const fxs = await fixtures.take(n, sessions);
              const out: InTrainingVoucher[] = [];
              // The bench's own lifecycle, stopped in training before any check-in.
              await pool(n, SIZES.concurrency, async (i) => {
                const id = await realLifecycle(apiTq, { ...fxs[i]!, sessionIds: [] }, newLatencies(), { complete: false });
                out.push({ voucherNo: id.slice('Voucher:'.length), institutionId: fxs[i]!.institutionId, sessionIds: fxs[i]!.sessionIds });
              });
              return out;
            },
          },
          { clients: SIZES.apiClients, vouchers: SIZES.apiVouchers, rounds: SIZES.apiRounds, sessionsPerRound: SIZES.apiSessionsPerRound, warmupSessions: SIZES.apiWarmupSessions },
        );
        log(`api overhead p50 / p99 ratio ${JSON.stringify((figures.apiOverhead as { ratios: unknown }).ratios)}`);
      } finally {
        await w.stop();
      }
    }

    // ---- per-voucher costs for docs/SCALING.md (bench/voucher-costs.ts) ----------------------
    if (ONLY.has('costs')) {
      const costTq = tq('costs');
      const w = await realWorker(costTq);
      try {
        figures.voucherCosts = await measureVoucherCosts(
          {
            db,
            client,
            checkIns: SIZES.checkIns,
            sessionMinutes: SESSION_MINUTES,
            log,
            lifecycle: async () => realLifecycle(costTq, (await fixtures.take(1, SIZES.checkIns))[0]!, newLatencies()),
            inTraining: async () => {
              const fx = (await fixtures.take(1, SIZES.checkIns))[0]!;
              const workflowId = await realLifecycle(costTq, { ...fx, sessionIds: [] }, newLatencies(), { complete: false });
              return { workflowId, sessionIds: fx.sessionIds };
            },
          },
          SIZES.costLifecycles,
        );
      } finally {
        await w.stop();
      }
    }

    // ---- 6: bulk issuance (bench/bulk-issuance.ts) ------------------------------------------
    if (ONLY.has('bulk')) {
      const bulkTq = tq('bulk');
      const w = await realWorker(bulkTq);
      try {
        figures.bulkIssuance = await measureBulkIssuance(
          {
            db,
            databaseUrl: url,
            temporalAddress: env.address,
            codecKeys,
            client,
            connection: env.nativeConnection,
            dataConverter: converter,
            pii,
            taskQueue: bulkTq,
            baselineTaskQueue: tq('bulk-baseline'),
            temporalMetricsUrl,
            workerOptions: WORKER_OPTIONS,
            tmp,
            occupationCode: fixtures.occupationCode,
            log,
          },
          { rows: SIZES.bulkRows, concurrency: SIZES.bulkConcurrency },
        );
        log(`bulk issuance ratio ${(figures.bulkIssuance as { ratio: number }).ratio}`);
      } finally {
        await w.stop();
      }
    }

    // ---- 6b: figure 6's decomposition, a voucher start piece by piece (bench/start-cost.ts; not by default)
    if (ONLY.has('starts')) {
      const startsTq = tq('starts');
      const w = await realWorker(startsTq);
      try {
        figures.startCost = await measureStartCost(
          {
            db,
            client,
            connection: env.nativeConnection,
            dataConverter: converter,
            workerOptions: WORKER_OPTIONS,
            tmp,
            taskQueue: startsTq,
            baselineTaskQueue: tq('starts-baseline'),
            occupationCode: fixtures.occupationCode,
            log,
          },
          { starts: SIZES.startCostStarts, concurrency: SIZES.bulkConcurrency, rounds: SIZES.startCostRounds },
        );
        log(`start cost: ${JSON.stringify((figures.startCost as { ratioToTrivial: unknown }).ratioToTrivial)}`);
      } finally {
        await w.stop();
      }
    }

    await real.stop();
    await skel.stop();

    // ---- 5b: worker memory per cached voucher ----------------------------------------------
    if (ONLY.has('memory')) {
      figures.memory = await measureMemory();
    }

    // ---- 7: settlement batch ---------------------------------------------------------------
    if (ONLY.has('settlement')) {
      figures.settlement = await measureSettlement();
    }

    async function measureMemory() {
      const n = SIZES.memoryVouchers;
      const memTq = tq('memory');
      // debugMode runs workflows on the main thread, so their sandboxes are on the heap that
      // process.memoryUsage().heapUsed reports (otherwise they live in a worker thread's isolate).
      const w = await realWorker(memTq, { debugMode: true });
      await runReal(memTq, 3, SIZES.checkIns); // load every code path first
      fullGc();
      await new Promise((r) => setTimeout(r, 500));
      fullGc();
      const before = process.memoryUsage();
      const cachedBefore = w.worker.getStatus().numCachedWorkflows;
      log(`memory: bringing ${n} vouchers into training with ${SIZES.checkIns} check-ins, left open`);
      const fxs = await fixtures.take(n, SIZES.checkIns);
      const lat = newLatencies();
      const ids: string[] = [];
      await pool(n, SIZES.concurrency, async (i) => {
        ids.push(await realLifecycle(memTq, fxs[i]!, lat, { complete: false }));
      });
      // Wait until the worker has taken every last check-in (the workflow publishes after it).
      for (let k = 0; k < 100; k++) {
        const open = await db('vouchers').whereIn('voucher_no', ids.map((id) => id.slice('Voucher:'.length))).where('attended_minutes', '<', SIZES.checkIns * SESSION_MINUTES).count<{ n: string }[]>({ n: '*' });
        if (Number(open[0]!.n) === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      fullGc();
      await new Promise((r) => setTimeout(r, 500));
      fullGc();
      const after = process.memoryUsage();
      const cachedAfter = w.worker.getStatus().numCachedWorkflows;
      const cachedDelta = cachedAfter - cachedBefore;
      const heapPer = (after.heapUsed - before.heapUsed) / Math.max(1, cachedDelta);
      const rssPer = (after.rss - before.rss) / Math.max(1, cachedDelta);
      log(`memory: ${cachedDelta} more cached, heapUsed +${round((after.heapUsed - before.heapUsed) / 2 ** 20)} MiB`);
      // Close them so nothing is left running.
      await pool(ids.length, SIZES.concurrency, async (i) => {
        const h = client.workflow.getHandle(ids[i]!);
        await h.signal(completeSignal, { assessmentPassed: true });
        await withTimeout(h.result(), RESULT_TIMEOUT_MS, ids[i]!);
      });
      await w.stop();
      return {
        figure: 'worker memory per cached voucher: heapUsed delta with N vouchers cached ÷ N (workflows on the main thread: debugMode)',
        goal: '≤ 0.5 MB',
        mbPerVoucher: round(heapPer / 1e6, 3),
        vouchers: n,
        cachedBefore,
        cachedAfter,
        heapUsedBeforeMB: round(before.heapUsed / 1e6, 1),
        heapUsedAfterMB: round(after.heapUsed / 1e6, 1),
        rssPerVoucherMB: round(rssPer / 1e6, 3),
        state: `in training, ${SIZES.checkIns} check-ins each, not completed`,
      };
    }

    async function measureSettlement() {
      // bench/settlement.ts: the real batch activities (and the workflow) ÷ COPY of the same rows.
      return measureSettlementBatch({
        db,
        databaseUrl: url,
        tmp,
        pii,
        rows: SIZES.settlementRows,
        connection: env.nativeConnection,
        client,
        codecKeys,
        workflowBundlePath: voucherBundle,
        workerOptions: WORKER_OPTIONS,
        taskQueue: tq('settlement'),
        log,
      });
    }
  } finally {
    await env.teardown().catch((e) => log(`teardown: ${e}`));
    await db.destroy();
    await dropDatabase(serverUrl, dbName).catch((e) => log(`drop database: ${e}`));
    if (embedded) await embedded.stop();
    rmSync(tmp, { recursive: true, force: true });
  }

  const finishedAt = new Date();
  const meta = { machine, sizes: SIZES, temporalStore: STORE, sqlitePragmas: PRAGMAS, dynamicConfig: DYNAMIC_CONFIG, workerOptions: WORKER_OPTIONS, command: 'npm run bench', startedAt: startedAt.toISOString(), seconds: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1) };
  mkdirSync(RESULTS, { recursive: true });
  for (const [name, f] of Object.entries(figures)) {
    writeFileSync(path.join(RESULTS, `${kebab(name)}.json`), JSON.stringify({ ...meta, result: f }, null, 2) + '\n');
  }
  // Figures not measured in this run keep their last recorded results in the table, marked as such.
  if (!TAG) writeDocTable(meta, { ...carryOverFigures(RESULTS, Object.keys(figures), kebab), ...figures });
  log(`done in ${meta.seconds} s; results in ${path.relative(ROOT, RESULTS)}/${TAG ? "" : ", table in docs/PERFORMANCE.md"}`);
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

function machineInfo(cli: string | undefined) {
  const sdk = JSON.parse(readFileSync(require.resolve('@temporalio/worker/package.json'), 'utf8')).version as string;
  let server = 'unknown';
  try {
    server = execFileSync(cli ?? 'temporal', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    /* keep unknown */
  }
  const postgres: string = 'unknown';
  return {
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGB: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
    node: process.version,
    temporalSdk: sdk,
    temporalServer: server,
    postgres,
    platform: `${os.type()} ${os.release()}`,
  };
}

class FixtureFactory {
  occupationCode = `9-BENCH${Date.now().toString(36).slice(-4)}`;
  private institutionId = '';
  private seq = 0;
  constructor(private readonly db: Db, private readonly pii: Pii) {}

  async init(): Promise<void> {
    this.institutionId = `INSTBENCH${Date.now().toString(36)}`;
    await this.db('institutions').insert({ id: this.institutionId, name: 'Bench institution', district: ISSUER, status: 'approved' });
    await this.db('subsidy_catalogue').insert({
      occupation_code: this.occupationCode,
      level: '4',
      training_kind: 'certificate',
      amount_fen: 150_000,
      funding_source: 'ui_employment_promotion',
      valid_from: '2020-01-01',
      valid_to: null,
    });
  }

  /**
   * `n` people, each with a voucher-to-be, in classes of 30 seats with `sessions` sessions each.
   * `fake` fixtures (skeleton runs) write nothing to the database.
   */
  async take(n: number, sessions: number, o: { fake?: boolean } = {}): Promise<Fixture[]> {
    const sessionIds = Array.from({ length: sessions }, (_, k) => `S${String(k + 1).padStart(2, '0')}`);
    const out: Fixture[] = [];
    const seats = 30;
    let classId = '';
    const firstStart = Date.now() + 3 * 86_400_000;
    const persons: Record<string, unknown>[] = [];
    for (let i = 0; i < n; i++) {
      if (i % seats === 0) {
        classId = `CLSBENCH${Date.now().toString(36)}${++this.seq}`;
        if (!o.fake) {
          await this.db('classes').insert({
            id: classId,
            institution_id: this.institutionId,
            occupation_code: this.occupationCode,
            level: '4',
            training_kind: 'certificate',
            mode: 'offline',
            capacity: seats,
            venue_lat: 30.0,
            venue_lng: 120.58,
          });
          await this.db('class_sessions').insert(
            sessionIds.map((sessionId, k) => ({
              class_id: classId,
              session_id: sessionId,
              starts_at: new Date(firstStart + k * 86_400_000).toISOString(),
              ends_at: new Date(firstStart + k * 86_400_000 + SESSION_MINUTES * 60_000).toISOString(),
              minutes: SESSION_MINUTES,
            })),
          );
        }
      }
      const idNumber = `BENCH-${process.pid}-${++this.seq}`;
      const personRef = this.pii.personRef(idNumber);
      if (!o.fake) {
        persons.push({
          person_ref: personRef,
          id_number_enc: this.pii.encrypt(idNumber),
          id_number_last4: idNumber.slice(-4),
          name_enc: this.pii.encrypt('测试'),
          ui_district: '330602',
        });
      }
      out.push({ personRef, classId, institutionId: this.institutionId, sessionIds });
    }
    for (let k = 0; k < persons.length; k += 500) await this.db('persons').insert(persons.slice(k, k + 500));
    return out;
  }
}

// ---- docs/PERFORMANCE.md: the generated table between markers ---------------------------------
const START = '<!-- bench:generated:start -->';
const END = '<!-- bench:generated:end -->';

function writeDocTable(meta: { machine: ReturnType<typeof machineInfo>; sizes: typeof SIZES; temporalStore: string; sqlitePragmas: string[]; command: string; startedAt: string; seconds: number }, f: Record<string, any>): void {
  const m = meta.machine;
  const lines: string[] = [];
  lines.push(`Generated by \`${meta.command}\` at ${meta.startedAt} (${meta.seconds} s). Machine: ${m.nproc} × ${m.cpu}, ${m.memoryGB} GiB, load average at start ${m.loadAverageAtStart.join(' / ')}; ${m.platform}; Node ${m.node}; Temporal TypeScript SDK ${m.temporalSdk}; ${m.temporalServer}, SQLite ${meta.temporalStore === 'memory' ? 'in memory' : 'file'}${meta.sqlitePragmas.length ? ` with pragmas ${meta.sqlitePragmas.join(', ')}` : ' (no pragmas)'}; PostgreSQL on DATABASE_URL's server. Sizes: \`${JSON.stringify(meta.sizes)}\`.`);
  const carried = Object.entries(f).filter(([, x]) => x?.carriedFrom).map(([k, x]) => `${k} (${x.carriedFrom})`);
  if (carried.length) lines.push('', `Not measured in this run, carried over from \`bench/results/\`: ${carried.join(', ')}.`);
  lines.push('');
  lines.push('| # | figure | ratio | absolute numbers | goal |');
  lines.push('| --- | --- | --- | --- | --- |');
  /** "Temporal server 83 / 69, worker process …, all processes …" (real / skeleton) from two CPU-by-group readings. */
  const cpuPair = (c: { real: Record<string, number>; skeleton: Record<string, number> }) => {
    const names: Record<string, string> = { temporal: 'Temporal server', bench: 'worker process', postgres: 'PostgreSQL' };
    const total = (m: Record<string, number>) => round(Object.values(m).reduce((a, x) => a + x, 0), 1);
    return [...Object.entries(names).map(([k, label]) => `${label} ${c.real[k] ?? 0} / ${c.skeleton[k] ?? 0}`), `all processes ${total(c.real)} / ${total(c.skeleton)}`].join(', ');
  };
  if (f.efficiency) {
    const e = f.efficiency;
    lines.push(`| 1 | lifecycles/s real ÷ skeleton (${e.checkIns} check-ins, concurrency ${e.concurrency}) | **${e.ratio}** (per-round ${e.roundRatios.map((r: { ratio: number }) => r.ratio).join(', ')}; median ${e.medianRoundRatio}) | real ${e.real.perSecond}/s (${e.real.lifecycles} in ${e.real.seconds} s, ${e.real.messagesPerSecond} msg/s, lifecycle p50 ${e.real.lifecycleMs.p50} ms, ${e.real.historyEvents} events); skeleton ${e.skeleton.perSecond}/s (${e.skeleton.lifecycles} in ${e.skeleton.seconds} s, p50 ${e.skeleton.lifecycleMs.p50} ms, ${e.skeleton.historyEvents} events)${e.cpuPerLifecycleMs ? `; CPU ms per lifecycle, real / skeleton: ${cpuPair(e.cpuPerLifecycleMs)}` : ''} | ≥ 0.9 |`);
  }
  if (f.checkInScaling) {
    const s = f.checkInScaling;
    const [a, b] = Object.keys(s.at).map(Number).sort((x, y) => x - y) as [number, number];
    lines.push(`| 2 | lifecycles/s with ${b} ÷ ${a} check-ins | **${s.ratio}** (messages/s ratio ${s.messageRatio}) | ${a}: ${s.at[a].perSecond}/s, ${s.at[a].historyEvents} events/voucher; ${b}: ${s.at[b].perSecond}/s, ${s.at[b].historyEvents} events/voucher; **${s.eventsPerCheckIn} events per check-in**, ${s.fixedEvents} fixed | linear, ≤ 4 events/check-in |`);
  }
  if (f.updateLatency) {
    const u = f.updateLatency;
    lines.push(`| 4 | Update ÷ signal ack, p50 / p99 | activate **${u.ratios.activateP50} / ${u.ratios.activateP99}**, enrol **${u.ratios.enrolP50} / ${u.ratios.enrolP99}** | activate ${u.realMs.activate.p50} / ${u.realMs.activate.p99} ms; enrol ${u.realMs.enrol.p50} / ${u.realMs.enrol.p99} ms; signal ${u.realMs.signal.p50} / ${u.realMs.signal.p99} ms (skeleton: activate ${u.skeletonMs.activate.p50} / ${u.skeletonMs.activate.p99}, signal ${u.skeletonMs.signal.p50} / ${u.skeletonMs.signal.p99} ms) | — (reported) |`);
  }
  if (f.coldCache) {
    const c = f.coldCache;
    lines.push(`| 5 | lifecycles/s, maxCachedWorkflows ${c.cold.maxCachedWorkflows} ÷ default | **${c.ratio}** | cold ${c.cold.perSecond}/s (${c.cold.lifecycles} in ${c.cold.seconds} s, signal p99 ${c.cold.signalMs.p99} ms); default ${c.warm.perSecond}/s (${c.warm.lifecycles} in ${c.warm.seconds} s, signal p99 ${c.warm.signalMs.p99} ms) | — (reported) |`);
  }
  if (f.memory) {
    const mm = f.memory;
    lines.push(`| 5 | heapUsed per cached voucher | **${mm.mbPerVoucher} MB** | ${mm.cachedAfter - mm.cachedBefore} more cached; heapUsed ${mm.heapUsedBeforeMB} → ${mm.heapUsedAfterMB} MB; RSS ${mm.rssPerVoucherMB} MB/voucher | ≤ 0.5 MB |`);
  }
  if (f.settlement) {
    const s = f.settlement;
    lines.push(s.real
      ? `| 7 | settlement batch (prepare + CSV + XLSX, both variants) ÷ COPY, ${s.rows} rows${s.carriedFrom ? ` _(run of ${s.carriedFrom})_` : ''} | **${s.real.ratioToCopy}** (through the workflow ${s.workflow.ratioToCopy}; reference exporter ${s.referenceExporter.ratioToCopy}) | real ${s.real.seconds} s (prepare ${s.real.prepareSeconds} s, render ${s.real.renderSeconds} s, ${s.batches} batches, Node CPU ${s.real.nodeCpuSeconds} s; full-variant CSV ${s.real.csvBytes} B, XLSX ${s.real.xlsxBytes} B); workflow ${s.workflow.seconds} s; COPY ${s.copyBaseline.seconds} s (${s.copyBaseline.bytes} bytes, ${s.copyBaseline.rowsPerSecond} rows/s); reference exporter ${s.referenceExporter.seconds} s | — (reported) |`
      : `| 7 | settlement batch (CSV + XLSX) ÷ COPY, ${s.rows} rows | pending (reference exporter ${s.referenceExporter.ratioToCopy}) | COPY ${s.copyBaseline.seconds} s; reference exporter ${s.referenceExporter.seconds} s — ${s.status} | — |`);
  }
  const from = (x: { carriedFrom?: string }) => (x.carriedFrom ? ` _(run of ${x.carriedFrom})_` : '');
  if (f.apiOverhead) {
    const a = f.apiOverhead;
    const perRound = a.rounds.map((r: { api: { p99: number }; signal: { p99: number } }) => round(r.api.p99 / r.signal.p99, 2)).join(', ');
    lines.push(
      `| 3 | API check-in ÷ bare signal, p50 / p99 (${a.clients} clients; each side's load from a process of its own)${from(a)} | **${a.ratios.p50} / ${a.ratios.p99}** | API ${a.apiMs.p50} / ${a.apiMs.p99} ms (${a.requestsPerSide} requests, ${a.apiPerSecond}/s, ${a.apiQueriesPerRequest} SQL/request, ${a.errors} errors); signal ${a.signalMs.p50} / ${a.signalMs.p99} ms (${a.signalPerSecond}/s); each client's first call of a round: API ${a.firstCallMs?.api.p50} / ${a.firstCallMs?.api.p99} ms, signal ${a.firstCallMs?.signal.p50} / ${a.firstCallMs?.signal.p99} ms; from the bench's own process (as before 2026-12-03): API ${a.apiInProcessLoopMs?.p50} / ${a.apiInProcessLoopMs?.p99} ms, signal ${a.signalInBenchProcessMs?.p50} / ${a.signalInBenchProcessMs?.p99} ms; bare read-model read + signal ${a.readModelSignalMs?.p50} / ${a.readModelSignalMs?.p99} ms; API ÷ signal p99 per round ${perRound}${a.cpuPerCheckInMs ? `; CPU ms per check-in, API / signal (first request to drained): all ${a.cpuPerCheckInMs.api.all} / ${a.cpuPerCheckInMs.signal.all} (ratio ${a.cpuRatio}), API process ${a.cpuPerCheckInMs.api['api process']}, PostgreSQL ${a.cpuPerCheckInMs.api.postgres} / ${a.cpuPerCheckInMs.signal.postgres}, Temporal server ${a.cpuPerCheckInMs.api.temporal} / ${a.cpuPerCheckInMs.signal.temporal}, load generator ${a.cpuPerCheckInMs.api['http load generator']} / ${a.cpuPerCheckInMs.signal['signal load generator']}` : ''} | p99 ≤ 2 |`,
    );
  } else {
    lines.push('| 3 | API overhead | not measured in this run | — | p99 ≤ 2 |');
  }
  if (f.voucherCosts) {
    const v = f.voucherCosts;
    const sp = v.spaced;
    lines.push(`| — | per-voucher costs, one lifecycle with ${v.checkIns} check-ins${from(v)} | — | back to back: ${v.historyEvents} history events, ${v.historyBytes} bytes of history, ${v.workflowTasks} workflow tasks, ${v.activityTasks} activity tasks, ${v.localActivities} local activities, ${v.searchAttributeUpserts} search-attribute upserts, ${v.dbQueries} SQL queries${sp ? `; spaced (each check-in taken before the next, as in real life): ${sp.historyEvents} events, ${sp.historyBytes} bytes, ${sp.workflowTasks} workflow tasks, ${sp.localActivities} local activities, ${sp.searchAttributeUpserts} upserts, ${sp.dbQueries} SQL` : ''} (mean of ${v.lifecycles}) | input of [SCALING.md](SCALING.md) |`);
  }
  if (f.bulkIssuance) {
    const b = f.bulkIssuance;
    lines.push(`| 6 | bulk issuance ÷ bare starts, ${b.rows} rows, concurrency ${b.concurrency}${from(b)} | **${b.ratio}** | list ${b.real.vouchersPerSecond} vouchers/s (${b.real.seconds} s; upload answered in ${b.real.uploadResponseMs} ms; ${b.real.inReadModelAtEnd !== undefined ? `${b.real.inReadModelAtEnd} in the read model when the job returned; ` : ''}${b.real.backlogDrainedSeconds !== undefined ? (b.real.backlogDrainedSeconds === null || Number.isNaN(b.real.backlogDrainedSeconds) ? 'first tasks not all taken within 30 min' : `every first task taken after ${b.real.backlogDrainedSeconds} s`) : `all projected after ${b.real.allProjectedSeconds} s`}; ${b.real.workerQueriesPerVoucher} worker SQL/voucher); voucher starts alone ${b.voucherStartsAlone?.perSecond}/s; bare starts ${b.baseline.startsPerSecond}/s (halves ${b.baseline.halves.join(', ')}) | ≥ 0.8 |`);
  } else {
    lines.push('| 6 | bulk issuance | not measured in this run | — | ≥ 0.8 |');
  }
  const block = `${START}\n${lines.join('\n')}\n${END}`;
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : `# Performance\n\n${START}\n${END}\n`;
  if (!doc.includes(START)) doc += `\n${START}\n${END}\n`;
  doc = doc.slice(0, doc.indexOf(START)) + block + doc.slice(doc.indexOf(END) + END.length);
  writeFileSync(DOC, doc);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
