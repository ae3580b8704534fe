/**
 * Per-voucher costs (BENCH_ONLY=costs), the inputs of docs/SCALING.md: complete real lifecycles run
 * one at a time (nothing else in flight), and for each one the exported history — events by type,
 * encoded size (payloads encrypted by the codec, as stored) — and the PostgreSQL queries sent by the
 * worker's activities and the issue step (knex `query` events on the bench's pool).
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Db } from '../db/connection';
import { checkInSignal, completeSignal } from '../workflows/voucher/messages';
import { eventTypeName, round } from './lib';

export interface CostsContext {
  db: Db;
  client: Client;
  checkIns: number;
  log: (m: string) => void;
  /** One complete lifecycle (issue → activate → enrol → check-ins → complete → settled); returns the workflow ID. */
  lifecycle: () => Promise<string>;
  /** A voucher brought into training with no check-in yet (issue → activate → enrol). */
  inTraining: () => Promise<{ workflowId: string; sessionIds: string[] }>;
  sessionMinutes: number;
}


/**
 * Check-ins as they really arrive — a day apart, each taken by the workflow before the next — instead
 * of back to back (where several signals share one workflow task): each waits until the read model
 * shows it projected.
 */
/** The bench's own read-model polls of the current lifecycle (not the voucher's cost: subtracted). */
let pollQueries = 0;

async function spacedLifecycle(c: CostsContext): Promise<string> {
  const v = await c.inTraining();
  const h = c.client.workflow.getHandle(v.workflowId);
  const voucherNo = v.workflowId.slice('Voucher:'.length);
  let want = 0;
  for (const sessionId of v.sessionIds) {
    await h.signal(checkInSignal, { sessionId, verifiedMinutes: c.sessionMinutes, at: Date.now() });
    want += c.sessionMinutes;
    for (let k = 0; k < 400; k++) {
      pollQueries++;
      const row = await c.db('vouchers').where({ voucher_no: voucherNo }).first('attended_minutes');
      if (row && Number(row.attended_minutes) >= want) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await h.signal(completeSignal, { assessmentPassed: true });
  const end = (await h.result()) as { status: string };
  if (end.status !== 'settled') throw new Error(`${v.workflowId} ended ${end.status}`);
  return v.workflowId;
}

export async function measureVoucherCosts(c: CostsContext, n: number) {
  return {
    ...(await measure(c, n, 'back to back', () => c.lifecycle())),
    spaced: await measure(c, n, 'spaced', () => spacedLifecycle(c)),
  };
}

async function measure(c: CostsContext, n: number, mode: string, run: () => Promise<string>) {
  const per: { events: number; bytes: number; queries: number; byType: Record<string, number> }[] = [];
  c.log(`costs: ${n} lifecycles one at a time, ${c.checkIns} check-ins each, ${mode}`);
  for (let i = 0; i < n; i++) {
    let queries = 0;
    pollQueries = 0;
    const on = () => queries++;
    c.db.on('query', on);
    let id: string;
    try {
      id = await run();
      // The last projection may still be in flight after the result: let it land.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      c.db.removeListener('query', on);
    }
    const h = await c.client.workflow.getHandle(id).fetchHistory();
    const byType: Record<string, number> = {};
    for (const e of h.events ?? []) byType[eventTypeName(e.eventType)] = (byType[eventTypeName(e.eventType)] ?? 0) + 1;
    const bytes = temporal.api.history.v1.History.encode(temporal.api.history.v1.History.fromObject(h)).finish().length;
    per.push({ events: h.events?.length ?? 0, bytes, queries: queries - pollQueries, byType });
  }
  const mean = (f: (x: (typeof per)[number]) => number) => round(per.reduce((a, x) => a + f(x), 0) / Math.max(1, per.length), 1);
  const types = [...new Set(per.flatMap((p) => Object.keys(p.byType)))].sort();
  const eventsByType = Object.fromEntries(types.map((t) => [t, mean((p) => p.byType[t] ?? 0)]));
  return {
    figure: 'per-voucher costs of one complete lifecycle (inputs of docs/SCALING.md)',
    checkInsSent: mode,
    lifecycles: n,
    checkIns: c.checkIns,
    historyEvents: mean((p) => p.events),
    historyBytes: mean((p) => p.bytes),
    workflowTasks: eventsByType['workflow_task_completed'] ?? 0,
    activityTasks: eventsByType['activity_task_scheduled'] ?? 0,
    localActivities: eventsByType['marker_recorded'] ?? 0,
    timersStarted: eventsByType['timer_started'] ?? 0,
    searchAttributeUpserts: eventsByType['upsert_workflow_search_attributes'] ?? 0,
    dbQueries: mean((p) => p.queries),
    eventsByType,
    note: 'dbQueries: worker activities + the issue step (policy read, number allocation) of the bench lifecycle; API requests add their own (figure 3: SQL per request)',
  };
}
