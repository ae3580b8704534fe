/**
 * Figure 3 (BENCH_ONLY=api): API overhead. p50/p99 of `POST /v1/vouchers/{no}/check-ins` through the
 * real API — `createApp` listening on a loopback port, its own Temporal client (codec, request-ID
 * interceptor) and PostgreSQL pool, real authentication with an institution key, the contract
 * validator, audit log and rate limiter in the chain — ÷ a bare Temporal client `signal(checkInSignal)`
 * to the same workflows, both under the same number of concurrent closed-loop clients (200). Neither
 * side's load shares a process with the worker: the API side's comes from closed loops over keep-alive
 * sockets in a process of its own (bench/http-load-process.ts), the signal side's from a Temporal
 * client in as many closed loops in another (bench/signal-process.ts).
 *
 * Every request names a (voucher, session) pair not yet checked in, so the API really signals (a
 * repeated session answers `duplicate` without a signal). Vouchers are real voucher workflows in
 * training (the bench's own lifecycle: start → activate → enrol), shared by both sides: the API
 * checks in some sessions, the bare client others, in alternating rounds; between rounds the bench
 * waits until the worker has projected every check-in, so one side's backlog never lands on the other.
 */
import { fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type { Client } from '@temporalio/client';
import pino from 'pino';
import { createApp, type ApiDeps } from '../api/app';
import { createPrincipal } from '../api/auth';
import { API_DB_OPTIONS, createDb, type Db } from '../db/connection';
import type { CodecKeys } from '../lib/codec';
import { API_NODE_OPTIONS } from '../lib/node-options';
import { REDACT_PATHS } from '../lib/logger';
import type { Pii } from '../lib/pii';
import { connectClient } from '../lib/temporal-connection';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { checkInSignal } from '../workflows/voucher/messages';
import type { ApiProcessConfig } from './api-process';
import { runHttpRound, type HttpRound, type HttpRoundResult } from './http-load-process';
import { runSignalRound, type SignalProcessConfig, type SignalRound } from './signal-process';
import { eventTypeName, round, summary } from './lib';
import { closedLoop, keepAliveAgent } from './load';
import { addPhase, msPerVoucher, newPhaseTotals, perVoucherTop, phaseProbe, type PhaseTotals } from './phase-probe';

type LoopResult = Awaited<ReturnType<typeof closedLoop>>;

export interface InTrainingVoucher {
  voucherNo: string;
  institutionId: string;
  sessionIds: string[];
}

export interface ApiOverheadContext {
  db: Db;
  databaseUrl: string;
  temporalAddress: string;
  codecKeys: CodecKeys;
  /** The bench's own client: the baseline's bare `signal`. */
  client: Client;
  pii: Pii;
  taskQueue: string;
  sessionMinutes: number;
  log: (m: string) => void;
  /** Keys for the API's own process (the same as the bench's Pii and codec). */
  apiProcess: Pick<ApiProcessConfig, 'codecKeys' | 'personRefKey' | 'piiKey'>;
  /** The dev server's Prometheus endpoint: each side's server requests per check-in. */
  temporalMetricsUrl?: string;
  /** `n` real vouchers in training in classes with `sessions` sessions each, none checked in yet. */
  prepare: (n: number, sessions: number) => Promise<InTrainingVoucher[]>;
}

export interface ApiOverheadSizes {
  clients: number;
  vouchers: number;
  /** Rounds per side (API and bare signal alternate). */
  rounds: number;
  /** Sessions each voucher checks in per round and side: requests per round = vouchers × this. */
  sessionsPerRound: number;
  /** Sessions each voucher checks in per side before the measured rounds (warm-up, not counted). */
  warmupSessions: number;
}

/**
 * The bench's API on a loopback port, as deployed but for two settings: request logs at info level go
 * to /dev/null instead of the terminal, and the per-principal rate limit is out of reach (600/min by
 * default would answer 429 to one institution key driving thousands of check-ins a minute; it still runs).
 */
export async function listenBenchApi(d: Pick<ApiDeps, 'db' | 'client' | 'pii' | 'taskQueue' | 'codecKeys' | 'principalCache'>): Promise<{ server: http.Server; port: number }> {
  const logger = pino({ name: 'api', level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination({ dest: '/dev/null', sync: false }));
  const app = createApp({ ...d, logger, validateResponses: false, rateLimitPerMinute: 1_000_000_000 });
  const server: http.Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  // The sockets of a side's generator stay idle while the other sides run: on a slow machine a round
  // took over a minute (2026-12-03 15:50), and a server closing an idle socket just as the client
  // reuses it fails that request (ECONNRESET / socket hang up). Idle sockets are kept for the whole run.
  server.keepAliveTimeout = 30 * 60_000;
  server.headersTimeout = 30 * 60_000 + 1_000;
  server.requestTimeout = 0;
  return { server, port: (server.address() as AddressInfo).port };
}

/** The API in the bench's own process, on a loopback port: its own Temporal client and PostgreSQL pool. */
export async function startApiOnLoopback(c: Pick<ApiOverheadContext, 'databaseUrl' | 'temporalAddress' | 'codecKeys' | 'pii' | 'taskQueue'>) {
  const apiDb = createDb(c.databaseUrl, API_DB_OPTIONS);
  let queries = 0;
  apiDb.on('query', () => queries++);
  const apiClient = await connectClient(c.temporalAddress, 'default', c.codecKeys);
  const { server, port } = await listenBenchApi({ db: apiDb, client: apiClient, pii: c.pii, taskQueue: c.taskQueue, codecKeys: c.codecKeys });
  return {
    port,
    /** PostgreSQL queries the API has sent so far. */
    queries: () => queries,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await apiClient.connection.close();
      await apiDb.destroy();
    },
  };
}

/**
 * The API in its own process (bench/api-process.ts), as deployed: its event loop is not shared with the
 * bench's worker and load generator.
 */
export async function startApiProcess(c: Pick<ApiOverheadContext, 'databaseUrl' | 'temporalAddress' | 'taskQueue' | 'apiProcess'>) {
  const config: ApiProcessConfig = { databaseUrl: c.databaseUrl, temporalAddress: c.temporalAddress, taskQueue: c.taskQueue, ...c.apiProcess };
  const child = fork(require.resolve('./api-process'), [], {
    // BENCH_API_CPU_PROFILE=<dir>: a V8 CPU profile of the API process (what to tune next).
    // The Node options of a deployed API process (lib/node-options.ts, docker-compose.yml).
    execArgv: ['--import', 'tsx', ...API_NODE_OPTIONS.split(' '), ...(process.env.BENCH_API_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_CPU_PROFILE}`] : [])],
    env: { ...process.env, BENCH_API_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the API process exited (${code}) before listening`)));
  });
  /** The API's counters, as its IPC answer to 'queries'. */
  const stats = () =>
    new Promise<{ queries: number; inflight: number; trace: Record<string, { n: number; ms: number }> }>((resolve) => {
      child.once('message', (m) => resolve(m as never));
      child.send('queries');
    });
  return {
    port,
    pid: child.pid,
    /** PostgreSQL queries the API has sent so far. */
    queries: async () => (await stats()).queries,
    /** Requests the API has received and not yet answered (or seen closed). */
    inflight: async () => (await stats()).inflight,
    /** Mean milliseconds per SQL statement kind, pool acquisition and signal, since the start. */
    trace: async () => Object.fromEntries(Object.entries((await stats()).trace).map(([k, v]) => [k, { n: v.n, meanMs: round(v.ms / v.n, 2) }])),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * A load generator in a process of its own (`file`, run with tsx), driven one round at a time over IPC:
 * `run(round)` sends the round and resolves with the process's answer.
 */
function forkRounds<R, T>(file: string, env: NodeJS.ProcessEnv = process.env) {
  const child = fork(require.resolve(file), [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return {
    child,
    run: (r: R) =>
      new Promise<T>((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`${file} exited (${code})`));
        child.once('exit', onExit);
        child.once('message', (m) => (child.off('exit', onExit), resolve(m as T)));
        child.send(r as object);
      }),
    stop() {
      if (child.exitCode === null) child.send('stop');
    },
  };
}

/** The bare side's client in a process of its own (bench/signal-process.ts), once it has connected. */
async function startSignalProcess(c: Pick<ApiOverheadContext, 'temporalAddress' | 'apiProcess'>) {
  const config: SignalProcessConfig = { temporalAddress: c.temporalAddress, codecKeys: c.apiProcess.codecKeys };
  const p = forkRounds<SignalRound, LoopResult>('./signal-process', { ...process.env, BENCH_SIGNAL_CONFIG: JSON.stringify(config) });
  await new Promise<void>((resolve, reject) => {
    p.child.once('message', () => resolve());
    p.child.once('exit', (code) => reject(new Error(`the signal process exited (${code}) before connecting`)));
  });
  return p;
}

/** The sides of every round: the two measured ones and the three decomposition sides. Each takes its own sessions. */
const SIDES = ['api', 'signal', 'apiLoop', 'signalInBench', 'readModelSignal'] as const;
type Side = (typeof SIDES)[number];

export async function measureApiOverhead(c: ApiOverheadContext, z: ApiOverheadSizes) {
  const sessionsTotal = SIDES.length * (z.warmupSessions + z.rounds * z.sessionsPerRound);
  c.log(`api: bringing ${z.vouchers} vouchers into training (classes of ${sessionsTotal} sessions)`);
  const vouchers = await c.prepare(z.vouchers, sessionsTotal);
  const institutions = [...new Set(vouchers.map((v) => v.institutionId))];
  const keys = new Map<string, string>();
  for (const id of institutions) keys.set(id, (await createPrincipal(c.db, { role: 'institution', institutionId: id, label: 'bench' })).key);

  const api = await startApiProcess(c);
  // The API side's load generator (bench/http-load-process.ts).
  const load = forkRounds<HttpRound, HttpRoundResult>('./http-load-process');
  const signaller = await startSignalProcess(c);
  const named = new Map<number, string>();
  if (api.pid) named.set(api.pid, 'api process');
  if (load.child.pid) named.set(load.child.pid, 'http load generator');
  if (signaller.child.pid) named.set(signaller.child.pid, 'signal load generator');
  const agent = keepAliveAgent(z.clients);
  const V = vouchers.length;
  let sessionCursor = 0; // index of the next unused session of every voucher
  // Sessions checked in per voucher so far by the sides that signal directly; the API's check-ins are
  // counted from `attendance_reports` (what the API took, whichever process sent it).
  let bareCheckedIn = 0;
  const statuses: Record<string, number> = {};
  let duplicates = 0;

  /** Requests i of a round: voucher i % V (so the 200 in flight name different vouchers), session base + ⌊i / V⌋. */
  const target = (i: number, base: number) => ({ v: vouchers[i % V]!, sessionId: vouchers[i % V]!.sessionIds[base + Math.floor(i / V)]! });

  /** Wall-clock windows of every side's rounds (epoch ms), from the first request to the end of the drain: for CPU decompositions. */
  const windows: { side: string; from: number; loopEnd: number; to: number }[] = [];
  /**
   * What the two main sides' measured rounds cost the machine, from the first request to the end of the
   * drain (the worker's catching up is the side's own): every process's CPU (the API process and both
   * load generators as groups of their own) and the dev server's requests by operation.
   */
  const spent: Record<'api' | 'signal', PhaseTotals & { checkIns: number }> = { api: { ...newPhaseTotals(), checkIns: 0 }, signal: { ...newPhaseTotals(), checkIns: 0 } };
  let measuring = false;
  async function timed<T>(side: string, bareSessions: number, loop: () => Promise<T>, checkIns = 0): Promise<T> {
    const probe = measuring && (side === 'api' || side === 'signal') ? await phaseProbe(c.temporalMetricsUrl, named) : undefined;
    const from = Date.now();
    const r = await loop();
    const loopEnd = Date.now();
    bareCheckedIn += bareSessions;
    await drained();
    windows.push({ side, from, loopEnd, to: Date.now() });
    if (probe) {
      const into = spent[side as 'api' | 'signal'];
      addPhase(into, await probe.stop());
      into.checkIns += checkIns;
    }
    return r;
  }

  let apiRequests = 0;
  /** The next `sessions` session layers as API check-in requests (one per voucher and session). */
  function checkInRequests(sessions: number): HttpRound['requests'] {
    apiRequests += V * sessions;
    const base = sessionCursor;
    sessionCursor += sessions;
    return Array.from({ length: V * sessions }, (_, i) => {
      const { v, sessionId } = target(i, base);
      return { path: `/v1/vouchers/${v.voucherNo}/check-ins`, authorization: `Bearer ${keys.get(v.institutionId)}`, body: JSON.stringify({ sessionId, verifiedMinutes: c.sessionMinutes }) };
    });
  }
  function tally(r: HttpRoundResult): HttpRoundResult {
    for (const [k, n] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
    duplicates += (r.statuses['202'] ?? 0) - r.counted;
    return r;
  }

  /** The API side, from the load generator's process (bench/http-load-process.ts). */
  async function apiRound(sessions: number) {
    const requests = checkInRequests(sessions);
    return timed('api', 0, async () => tally(await load.run({ port: api.port, clients: z.clients, requests })), requests.length);
  }

  /** Decomposition: the same API requests from closed loops in the bench's own process, which also runs the worker. */
  async function apiLoopRound(sessions: number) {
    const requests = checkInRequests(sessions);
    return timed('apiLoop', 0, async () => tally(await runHttpRound(agent, { port: api.port, clients: z.clients, requests })));
  }

  /** The next `sessions` session layers as signal targets (one per voucher and session). */
  function signalRound(sessions: number): SignalRound {
    const base = sessionCursor;
    sessionCursor += sessions;
    const targets = Array.from({ length: V * sessions }, (_, i) => {
      const { v, sessionId } = target(i, base);
      return { workflowId: voucherWorkflowId(v.voucherNo), sessionId };
    });
    return { clients: z.clients, minutes: c.sessionMinutes, targets };
  }

  /** The bare side: signal(checkIn) from a client in a process of its own (bench/signal-process.ts). */
  async function bareSignalRound(sessions: number) {
    const r = signalRound(sessions);
    return timed('signal', sessions, () => signaller.run(r), r.targets.length);
  }

  /** Decomposition: the same bare signals from the bench's own client, which shares its process with the worker. */
  async function signalInBenchRound(sessions: number) {
    const r = signalRound(sessions);
    return timed('signalInBench', sessions, () => runSignalRound(c.client, r));
  }

  /**
   * Decomposition: what the route asks of PostgreSQL and Temporal (its pre-check, one indexed read of
   * the read model's `vouchers`, then the signal), from the bench's own client: API − this = HTTP,
   * Express middleware, authentication, audit log, validation.
   */
  async function readModelSignalRound(sessions: number) {
    const base = sessionCursor;
    sessionCursor += sessions;
    const r = await timed('readModelSignal', sessions, () => closedLoop(V * sessions, z.clients, async (i) => {
      const { v, sessionId } = target(i, base);
      const row = await c.db('vouchers').where({ voucher_no: v.voucherNo }).first('status', 'snapshot');
      if (!row || row.status !== 'in_training') throw new Error(`read model: ${v.voucherNo} is ${row?.status}`);
      await c.client.workflow.getHandle(voucherWorkflowId(v.voucherNo)).signal(checkInSignal, { sessionId, verifiedMinutes: c.sessionMinutes, at: Date.now() });
    }));
    return r;
  }

  /** Per side: history events per check-in of these vouchers, by type, counted in that side's windows. */
  async function historiesByWindow(nos: string[]) {
    const counts: Record<string, Record<string, number>> = {};
    const signals: Record<string, number> = {};
    for (const no of nos) {
      const h = await c.client.workflow.getHandle(voucherWorkflowId(no)).fetchHistory();
      for (const e of h.events ?? []) {
        const t = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
        const w = windows.find((x) => t >= x.from && t <= x.to);
        if (!w) continue;
        const type = eventTypeName(e.eventType);
        const side = (counts[w.side] ??= {});
        side[type] = (side[type] ?? 0) + 1;
        if (type === 'workflow_execution_signaled') signals[w.side] = (signals[w.side] ?? 0) + 1;
      }
    }
    return Object.fromEntries(
      Object.entries(counts).map(([side, byType]) => {
        const n = signals[side] || 1;
        const total = Object.values(byType).reduce((x, y) => x + y, 0);
        return [side, { checkIns: n, eventsPerCheckIn: round(total / n, 2), ...Object.fromEntries(Object.entries(byType).map(([k, v]) => [k, round(v / n, 2)])) }];
      }),
    );
  }

  /** Vouchers whose read-model minutes are not what the check-ins so far add up to. */
  async function mismatched(): Promise<number> {
    const r = await c.db.raw(
      `select count(*) as n from vouchers v
        where v.voucher_no = any(?)
          and v.attended_minutes <> ? + coalesce((select sum(a.verified_minutes) from attendance_reports a where a.voucher_no = v.voucher_no), 0)`,
      [vouchers.map((v) => v.voucherNo), bareCheckedIn * c.sessionMinutes],
    );
    return Number(r.rows[0].n);
  }

  /** Until the API has answered everything sent to it and the worker has projected every check-in so far (not timed). */
  async function drained(): Promise<void> {
    for (let k = 0; k < 600; k++) {
      if ((await api.inflight()) === 0 && (await mismatched()) === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`api bench: check-ins not projected after 150 s (${await mismatched()} vouchers short)`);
  }

  try {
    c.log(`api: warm-up (${V * z.warmupSessions} requests per side)`);
    await apiRound(z.warmupSessions);
    await bareSignalRound(z.warmupSessions);
    await apiLoopRound(z.warmupSessions);
    await signalInBenchRound(z.warmupSessions);
    await readModelSignalRound(z.warmupSessions);
    // Per side: every call, and apart each client's first call of a round (the burst in which all 200
    // start at once) and the rest.
    const steady = Object.fromEntries(SIDES.map((k) => [k, [] as number[]])) as Record<Side, number[]>;
    const first = Object.fromEntries(SIDES.map((k) => [k, [] as number[]])) as Record<Side, number[]>;
    const take = (k: Side, r: { first: number[]; steady: number[]; errors: string[] }) => {
      steady[k].push(...r.steady);
      first[k].push(...r.first);
      errors.push(...r.errors);
    };
    let apiMs = 0;
    let sigMs = 0;
    const errors: string[] = [];
    const rounds: { api: { p50: number; p99: number }; signal: { p50: number; p99: number } }[] = [];
    measuring = true;
    for (let r = 0; r < z.rounds; r++) {
      // Alternate which side goes first, so a drift in machine load does not favour one.
      const firstSide = r % 2 === 0 ? 'api' : 'signal';
      c.log(`api round ${r + 1}/${z.rounds}: ${V * z.sessionsPerRound} check-ins per side at ${z.clients} clients (${firstSide} first)`);
      const a = firstSide === 'api' ? await apiRound(z.sessionsPerRound) : undefined;
      const b = await bareSignalRound(z.sessionsPerRound);
      const a2 = a ?? (await apiRound(z.sessionsPerRound));
      take('apiLoop', await apiLoopRound(z.sessionsPerRound));
      take('signalInBench', await signalInBenchRound(z.sessionsPerRound));
      take('readModelSignal', await readModelSignalRound(z.sessionsPerRound));
      take('api', a2);
      take('signal', b);
      apiMs += a2.ms;
      sigMs += b.ms;
      const as = summary(a2.latencies);
      const bs = summary(b.latencies);
      rounds.push({ api: { p50: as.p50, p99: as.p99 }, signal: { p50: bs.p50, p99: bs.p99 } });
      c.log(`  api p50/p99 ${as.p50}/${as.p99} ms (${a2.errors.length} errors); signal ${bs.p50}/${bs.p99} ms (${b.errors.length} errors)`);
    }
    // Every check-in counted exactly once: the read model holds every session's minutes.
    const wrong = await mismatched();
    const historyByWindow = await historiesByWindow(vouchers.slice(0, Math.min(V, 50)).map((v) => v.voucherNo));
    const all = (k: Side) => summary([...first[k], ...steady[k]]);
    const a = all('api');
    const s = all('signal');
    const cpuPerCheckIn = (k: 'api' | 'signal') => {
      const by = msPerVoucher(spent[k].cpu, spent[k].checkIns);
      return { ...by, all: round(Object.values(by).reduce((x, y) => x + y, 0), 2) };
    };
    const cpu = { api: cpuPerCheckIn('api'), signal: cpuPerCheckIn('signal') };
    return {
      figure: 'API overhead: POST /v1/vouchers/{no}/check-ins through the API ÷ bare client signal(checkIn), same workflows, same concurrency',
      goal: 'p99 ratio ≤ 2',
      loadGenerator: 'API side: closed loops over keep-alive sockets kept open from round to round, in a process of its own (bench/http-load-process.ts); signal side: a Temporal client (standard Connection, same codec) in closed loops in a process of its own (bench/signal-process.ts), one call in flight per client',
      clients: z.clients,
      vouchers: V,
      requestsPerSide: a.n,
      ratios: { p50: round(a.p50 / s.p50, 2), p99: round(a.p99 / s.p99, 2) },
      apiMs: a,
      signalMs: s,
      // Each client's first call of a round (the opening burst) and the rest, per side.
      firstCallMs: { api: summary(first.api), signal: summary(first.signal) },
      steadyStateMs: { api: summary(steady.api), signal: summary(steady.signal) },
      // The same API requests from closed loops in the bench's own process, which also runs the worker (the generator before 2026-12-03).
      apiInProcessLoopMs: all('apiLoop'),
      // The bare signals from the bench's own client (its process also runs the worker), as before 2026-12-03.
      signalInBenchProcessMs: all('signalInBench'),
      // What the route asks of PostgreSQL and Temporal (read-model pre-check, then signal) from a bare client, same concurrency.
      readModelSignalMs: all('readModelSignal'),
      // CPU per check-in by process group over the measured rounds, from the first request to the end of
      // the drain ('bench' is the worker): on a saturated machine the latency ratio follows this one.
      cpuPerCheckInMs: cpu,
      cpuRatio: round(cpu.api.all / cpu.signal.all, 2),
      serverRequestsPerCheckIn: { api: perVoucherTop(spent.api.server, spent.api.checkIns), signal: perVoucherTop(spent.signal.server, spent.signal.checkIns) },
      apiPerSecond: round((a.n * 1000) / apiMs, 1),
      signalPerSecond: round((s.n * 1000) / sigMs, 1),
      rounds,
      httpStatuses: statuses,
      duplicatesAnswered: duplicates,
      errors: errors.length,
      firstErrors: [...new Set(errors)].slice(0, 5),
      vouchersWithWrongAttendance: wrong,
      apiQueriesPerRequest: round((await api.queries()) / apiRequests, 2),
      apiProcess: 'own process (bench/api-process.ts), as deployed',
      apiWaits: await api.trace(),
      windows,
      // What the worker and server did per check-in on each side (events of a sample of the vouchers'
      // histories, by the window their time falls in): fewer workflow tasks per check-in = more
      // check-ins coalesced into one task.
      historyPerCheckIn: historyByWindow,
    };
  } finally {
    agent.destroy();
    load.stop();
    signaller.stop();
    await api.stop();
  }
}
