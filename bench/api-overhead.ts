/**
 * Figure 3 (BENCH_ONLY=api): API overhead. p50/p99 of `POST /v1/vouchers/{no}/check-ins` through the
 * real API — `createApp` listening on a loopback port, its own Temporal client (codec, request-ID
 * interceptor) and PostgreSQL pool, real authentication with an institution key, the contract
 * validator, audit log and rate limiter in the chain — ÷ a bare Temporal client `signal(checkInSignal)`
 * to the same workflows, both under the same number of concurrent closed-loop clients (200).
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
import { REDACT_PATHS } from '../lib/logger';
import type { Pii } from '../lib/pii';
import { connectClient } from '../lib/temporal-connection';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { checkInSignal, stateQuery } from '../workflows/voucher/messages';
import type { ApiProcessConfig } from './api-process';
import { eventTypeName, round, summary } from './lib';
import { closedLoop, httpRequest, keepAliveAgent } from './load';

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
  server.keepAliveTimeout = 60_000;
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
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_API_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_CPU_PROFILE}`] : [])],
    env: { ...process.env, BENCH_API_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the API process exited (${code}) before listening`)));
  });
  return {
    port,
    pid: child.pid,
    /** PostgreSQL queries the API has sent so far. */
    queries: () =>
      new Promise<number>((resolve) => {
        child.once('message', (m) => resolve((m as { queries: number }).queries));
        child.send('queries');
      }),
    /** Mean milliseconds per SQL statement kind, pool acquisition and signal, since the start. */
    trace: () =>
      new Promise<Record<string, { n: number; meanMs: number }>>((resolve) => {
        child.once('message', (m) => {
          const t = (m as { trace: Record<string, { n: number; ms: number }> }).trace;
          resolve(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { n: v.n, meanMs: round(v.ms / v.n, 2) }])));
        });
        child.send('queries');
      }),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export async function measureApiOverhead(c: ApiOverheadContext, z: ApiOverheadSizes) {
  const sessionsTotal = 4 /* warm-up of each side */ + 4 * z.rounds * z.sessionsPerRound;
  c.log(`api: bringing ${z.vouchers} vouchers into training (classes of ${sessionsTotal} sessions)`);
  const vouchers = await c.prepare(z.vouchers, sessionsTotal);
  const institutions = [...new Set(vouchers.map((v) => v.institutionId))];
  const keys = new Map<string, string>();
  for (const id of institutions) keys.set(id, (await createPrincipal(c.db, { role: 'institution', institutionId: id, label: 'bench' })).key);

  const api = await startApiProcess(c);
  const agent = keepAliveAgent(z.clients);
  const V = vouchers.length;
  let sessionCursor = 0; // index of the next unused session of every voucher
  let checkedIn = 0; // sessions checked in per voucher so far
  const statuses: Record<string, number> = {};
  let duplicates = 0;

  /** Requests i of a round: voucher i % V (so the 200 in flight name different vouchers), session base + ⌊i / V⌋. */
  const target = (i: number, base: number) => ({ v: vouchers[i % V]!, sessionId: vouchers[i % V]!.sessionIds[base + Math.floor(i / V)]! });

  /** Wall-clock windows of every side's rounds (epoch ms), from the first request to the end of the drain: for CPU decompositions. */
  const windows: { side: string; from: number; loopEnd: number; to: number }[] = [];
  async function timed<T>(side: string, sessions: number, loop: () => Promise<T>): Promise<T> {
    const from = Date.now();
    const r = await loop();
    const loopEnd = Date.now();
    checkedIn += sessions;
    await drained();
    windows.push({ side, from, loopEnd, to: Date.now() });
    return r;
  }

  let apiRequests = 0;
  async function apiRound(sessions: number) {
    apiRequests += V * sessions;
    const base = sessionCursor;
    sessionCursor += sessions;
    const r = await timed('api', sessions, () => closedLoop(V * sessions, z.clients, async (i) => {
      const { v, sessionId } = target(i, base);
      const res = await httpRequest(agent, api.port, {
        method: 'POST',
        path: `/v1/vouchers/${v.voucherNo}/check-ins`,
        headers: { authorization: `Bearer ${keys.get(v.institutionId)}` },
        body: JSON.stringify({ sessionId, verifiedMinutes: c.sessionMinutes }),
      });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 160)}`);
      if (!(JSON.parse(res.body) as { counted: boolean }).counted) duplicates++;
    }));
    return r;
  }

  async function signalRound(sessions: number) {
    const base = sessionCursor;
    sessionCursor += sessions;
    const r = await timed('signal', sessions, () => closedLoop(V * sessions, z.clients, async (i) => {
      const { v, sessionId } = target(i, base);
      await c.client.workflow.getHandle(voucherWorkflowId(v.voucherNo)).signal(checkInSignal, { sessionId, verifiedMinutes: c.sessionMinutes, at: Date.now() });
    }));
    return r;
  }

  /** Decomposition: what the API asks of Temporal per check-in (state query, then signal), from a bare client. */
  async function querySignalRound(sessions: number) {
    const base = sessionCursor;
    sessionCursor += sessions;
    const r = await timed('querySignal', sessions, () => closedLoop(V * sessions, z.clients, async (i) => {
      const { v, sessionId } = target(i, base);
      const h = c.client.workflow.getHandle(voucherWorkflowId(v.voucherNo));
      await h.query(stateQuery);
      await h.signal(checkInSignal, { sessionId, verifiedMinutes: c.sessionMinutes, at: Date.now() });
    }));
    return r;
  }

  /**
   * A proposal, measured without changing the API: the route's pre-check read from the read model
   * (one indexed PostgreSQL read of `vouchers`) instead of a workflow query, then the signal.
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

  /** Until the worker has taken and projected every check-in so far (not timed). */
  async function drained(): Promise<void> {
    const nos = vouchers.map((v) => v.voucherNo);
    const want = checkedIn * c.sessionMinutes;
    for (let k = 0; k < 600; k++) {
      const open = await c.db('vouchers').whereIn('voucher_no', nos).where('attended_minutes', '<', want).count<{ n: string }[]>({ n: '*' });
      if (Number(open[0]!.n) === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`api bench: check-ins not projected after 150 s (want ${want} minutes per voucher)`);
  }

  try {
    c.log(`api: warm-up (${V} requests per side)`);
    await apiRound(1);
    await signalRound(1);
    await querySignalRound(1);
    await readModelSignalRound(1);
    const rmLat: number[] = [];
    const apiLat: number[] = [];
    const sigLat: number[] = [];
    const qsLat: number[] = [];
    let apiMs = 0;
    let sigMs = 0;
    const errors: string[] = [];
    const rounds: { api: { p50: number; p99: number }; signal: { p50: number; p99: number } }[] = [];
    for (let r = 0; r < z.rounds; r++) {
      // Alternate which side goes first, so a drift in machine load does not favour one.
      const first = r % 2 === 0 ? 'api' : 'signal';
      c.log(`api round ${r + 1}/${z.rounds}: ${V * z.sessionsPerRound} check-ins per side at ${z.clients} clients (${first} first)`);
      const a = first === 'api' ? await apiRound(z.sessionsPerRound) : undefined;
      const b = await signalRound(z.sessionsPerRound);
      const a2 = a ?? (await apiRound(z.sessionsPerRound));
      const q = await querySignalRound(z.sessionsPerRound);
      qsLat.push(...q.latencies);
      errors.push(...q.errors);
      const m = await readModelSignalRound(z.sessionsPerRound);
      rmLat.push(...m.latencies);
      errors.push(...m.errors);
      apiLat.push(...a2.latencies);
      sigLat.push(...b.latencies);
      apiMs += a2.ms;
      sigMs += b.ms;
      errors.push(...a2.errors, ...b.errors);
      const as = summary(a2.latencies);
      const bs = summary(b.latencies);
      rounds.push({ api: { p50: as.p50, p99: as.p99 }, signal: { p50: bs.p50, p99: bs.p99 } });
      c.log(`  api p50/p99 ${as.p50}/${as.p99} ms (${a2.errors.length} errors); signal ${bs.p50}/${bs.p99} ms (${b.errors.length} errors)`);
    }
    // Every check-in counted exactly once: the read model holds every session's minutes.
    const expected = checkedIn * c.sessionMinutes;
    const wrong = await c.db('vouchers').whereIn('voucher_no', vouchers.map((v) => v.voucherNo)).whereNot('attended_minutes', expected).count<{ n: string }[]>({ n: '*' });
    const historyByWindow = await historiesByWindow(vouchers.slice(0, Math.min(V, 50)).map((v) => v.voucherNo));
    const a = summary(apiLat);
    const s = summary(sigLat);
    const qs = summary(qsLat);
    const rm = summary(rmLat);
    return {
      figure: 'API overhead: POST /v1/vouchers/{no}/check-ins through the API ÷ bare client signal(checkIn), same workflows, same concurrency',
      goal: 'p99 ratio ≤ 2',
      loadGenerator: 'in-process closed loops over a keep-alive http.Agent (bench/load.ts), one request in flight per client',
      clients: z.clients,
      vouchers: V,
      requestsPerSide: apiLat.length,
      ratios: { p50: round(a.p50 / s.p50, 2), p99: round(a.p99 / s.p99, 2) },
      apiMs: a,
      signalMs: s,
      // What the API route asks of Temporal (state query + signal) from a bare client, same concurrency:
      // API − this = HTTP, Express middleware, authentication, audit log, validation.
      querySignalMs: qs,
      // Proposal: the pre-check from the read model (PostgreSQL) instead of a workflow query, then the signal.
      readModelSignalMs: rm,
      apiPerSecond: round((apiLat.length * 1000) / apiMs, 1),
      signalPerSecond: round((sigLat.length * 1000) / sigMs, 1),
      rounds,
      httpStatuses: statuses,
      duplicatesAnswered: duplicates,
      errors: errors.length,
      firstErrors: [...new Set(errors)].slice(0, 5),
      vouchersWithWrongAttendance: Number(wrong[0]!.n),
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
    await api.stop();
  }
}
