/**
 * What a bench phase cost the machine: every process's CPU by group (bench/proc-cpu.ts), the dev server's
 * request counters by operation (its Prometheus endpoint) and this process's event-loop delay. Used by
 * figure 6 (list against bare starts) and figure 1 (real lifecycle against the skeleton).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { procCpu } from './proc-cpu';
import { round } from './lib';

const PREFIX: Record<string, string> = { persistence_requests: 'persistence', visibility_persistence_requests: 'visibility', service_requests: 'service' };

/**
 * Sums of the dev server's `persistence_requests`, `visibility_persistence_requests` and `service_requests`
 * counters by operation (labels other than the operation summed over), and the time spent in persistence
 * calls (`persistence_latency_sum`, as ms). With `since`, the change from it.
 */
export async function serverCounters(url: string | undefined, since?: Map<string, number>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!url) return out;
  const text = await (await fetch(url)).text();
  for (const line of text.split('\n')) {
    const m = /^(persistence_requests|visibility_persistence_requests|service_requests|persistence_latency_sum)\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
    if (!m) continue;
    const latency = m[1] === 'persistence_latency_sum'; // seconds, summed over every operation
    const key = latency ? 'persistence ms (all operations)' : `${PREFIX[m[1]!]} ${/operation="([^"]*)"/.exec(m[2]!)?.[1] ?? '?'}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]) * (latency ? 1000 : 1));
  }
  if (since) for (const [k, v] of out) out.set(k, v - (since.get(k) ?? 0));
  return out;
}

export function perVoucherTop(counts: Map<string, number>, n: number): Record<string, number> {
  const rows = [...counts].map(([k, v]) => [k, round(v / n, 3)] as const).filter(([, v]) => v > 0);
  const top = (prefix: string) => rows.filter(([k]) => k.startsWith(prefix)).sort((a, b) => b[1] - a[1]).slice(0, 14);
  return Object.fromEntries([...top('persistence'), ...top('visibility'), ...top('service')]);
}

/** CPU seconds by group as ms per voucher (`n` vouchers). */
export function msPerVoucher(seconds: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, round((v * 1000) / n, 2)]));
}

/** CPU seconds by group as cores (÷ the phase's wall time in ms). */
export function cores(seconds: Record<string, number>, wallMs: number): Record<string, number> {
  return Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, round((v * 1000) / wallMs, 2)]));
}

/**
 * What a phase cost, read from now until `stop()`: this process's event-loop delay (ms: mean, p50, p99,
 * max), every process's CPU by group (/proc, bench/proc-cpu.ts) and the dev server's request counters
 * (when its metrics URL is known).
 */
export async function phaseProbe(metricsUrl: string | undefined, named?: ReadonlyMap<number, string>) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const cpu = procCpu(named);
  const server = await serverCounters(metricsUrl);
  return {
    stop: async () => {
      h.disable();
      const ms = (ns: number) => round(ns / 1e6, 1);
      const lag = { mean: ms(h.mean), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
      return { lag, cpu: cpu.stop(), server: await serverCounters(metricsUrl, server) };
    },
  };
}

export type PhaseReading = Awaited<ReturnType<Awaited<ReturnType<typeof phaseProbe>>['stop']>>;

/** CPU seconds by group and server requests by operation, summed over several phases of one side. */
export interface PhaseTotals {
  cpu: Record<string, number>;
  server: Map<string, number>;
}

export function newPhaseTotals(): PhaseTotals {
  return { cpu: {}, server: new Map() };
}

export function addPhase(into: PhaseTotals, r: PhaseReading): void {
  for (const [k, v] of Object.entries(r.cpu)) into.cpu[k] = round((into.cpu[k] ?? 0) + v, 2);
  for (const [k, v] of r.server) into.server.set(k, (into.server.get(k) ?? 0) + v);
}
