/**
 * A run with BENCH_ONLY measures some figures; the generated table of docs/PERFORMANCE.md keeps the
 * others from their last recorded results (bench/results/<figure>.json), marked with that run's time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function carryOverFigures(resultsDir: string, measured: string[], kebab: (s: string) => string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!existsSync(resultsDir)) return out;
  const skip = new Set(measured.map(kebab));
  for (const file of readdirSync(resultsDir)) {
    if (!file.endsWith('.json')) continue;
    const base = file.slice(0, -'.json'.length);
    if (skip.has(base)) continue;
    try {
      const j = JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as { startedAt?: string; machine?: { loadAverageAtStart?: number[] }; result?: Record<string, unknown> };
      const load = j.machine?.loadAverageAtStart ? `, load ${j.machine.loadAverageAtStart.join(' / ')}` : '';
      if (j.result && typeof j.result === 'object') out[camel(base)] = { ...j.result, carriedFrom: `${j.startedAt ?? 'an earlier run'}${load}` };
    } catch {
      /* not a result file */
    }
  }
  return out;
}
