/** Small helpers of the benchmark: timing, percentiles, a bounded pool, COPY TO STDOUT through pg. */
import type { Client } from 'pg';
import { temporal } from '@temporalio/proto';
import v8 from 'node:v8';
import vm from 'node:vm';

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  return n;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export function summary(xs: number[]): { n: number; p50: number; p99: number; mean: number; max: number } {
  return {
    n: xs.length,
    p50: round(percentile(xs, 50)),
    p99: round(percentile(xs, 99)),
    mean: round(xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length)),
    max: round(xs.length ? Math.max(...xs) : NaN),
  };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Runs `fn(0..n-1)` with at most `concurrency` in flight; returns wall-clock milliseconds. */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const lanes = Array.from({ length: Math.min(concurrency, n) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await fn(i);
    }
  });
  await Promise.all(lanes);
  return performance.now() - t0;
}

export async function timed<T>(into: number[], f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await f();
  into.push(performance.now() - t0);
  return r;
}

let gcFn: (() => void) | undefined;
/** A full garbage collection, without needing `node --expose-gc` on the command line. */
export function fullGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose_gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

/**
 * `COPY (...) TO STDOUT` through a plain pg client (pg has no COPY-out API of its own; this is the
 * minimal "submittable" that pg-copy-streams also builds on). Each chunk goes to `sink`.
 */
export function copyOut(client: Client, sql: string, sink: (chunk: Buffer) => void): Promise<{ bytes: number }> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let error: Error | undefined;
    const submittable = {
      submit(connection: { query(text: string): void }) {
        connection.query(sql);
      },
      handleCopyOutResponse() {},
      handleCopyData(msg: { chunk: Buffer }) {
        bytes += msg.chunk.length;
        sink(msg.chunk);
      },
      handleRowDescription() {},
      handleDataRow() {},
      handleCommandComplete() {},
      handleEmptyQuery() {},
      handlePortalSuspended() {},
      handleCopyInResponse() {},
      handleError(e: Error) {
        error = e;
      },
      handleReadyForQuery() {
        if (error) reject(error);
        else resolve({ bytes });
      },
    };
    client.query(submittable as never);
  });
}

/** A history event's type as a short name: `EVENT_TYPE_WORKFLOW_TASK_COMPLETED` → `workflow_task_completed`. */
export function eventTypeName(t: number | null | undefined): string {
  return (temporal.api.enums.v1.EventType[t ?? 0] ?? String(t)).replace(/^EVENT_TYPE_/, '').toLowerCase();
}

/** A history event's time in epoch ms (NaN without one). */
export function eventMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;
}
