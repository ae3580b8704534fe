/**
 * Figure 3's API, in its own process as deployed (docker-compose's `api` service; `api/main.ts`): the
 * bench forks this file, so the API's event loop is not shared with the bench's worker and load
 * generator — as with autocannon or wrk against a real deployment. Settings come from the parent in
 * BENCH_API_CONFIG (JSON); the process answers on its IPC channel:
 *   → { port }                      once listening
 *   ← 'queries'  → { queries, trace, inflight }   PostgreSQL queries sent so far, waits, requests not yet answered
 *   ← 'stop'                        closes everything and exits
 */
import { PrincipalCache } from '../api/principal-cache';
import { API_DB_OPTIONS, createDb } from '../db/connection';
import { parseCodecKeys } from '../lib/codec';
import { Pii } from '../lib/pii';
import { connectClient } from '../lib/temporal-connection';
import { listenBenchApi } from './api-overhead';

export interface ApiProcessConfig {
  databaseUrl: string;
  temporalAddress: string;
  /** The `TEMPORAL_CODEC_KEYS` form (`id:hex,…`). */
  codecKeys: string;
  personRefKey: string;
  piiKey: string;
  taskQueue: string;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.env.BENCH_API_CONFIG ?? '') as ApiProcessConfig;
  const db = createDb(c.databaseUrl, API_DB_OPTIONS);
  let queries = 0;
  db.on('query', () => queries++);
  const codecKeys = parseCodecKeys(c.codecKeys);
  const client = await connectClient(c.temporalAddress, 'default', codecKeys);
  // Where a request waits (bench/api-overhead.ts reports it): SQL by statement, pool acquisition, the signal.
  const trace: Record<string, { n: number; ms: number }> = {};
  const add = (k: string, ms: number) => ((trace[k] ??= { n: 0, ms: 0 }).n++, (trace[k].ms += ms));
  const started = new Map<string, number>();
  db.on('query', (q: { __knexQueryUid: string }) => started.set(q.__knexQueryUid, performance.now()));
  db.on('query-response', (_r: unknown, q: { __knexQueryUid: string; sql: string }) => {
    const t = started.get(q.__knexQueryUid);
    started.delete(q.__knexQueryUid);
    if (t !== undefined) add(`sql ${q.sql.slice(0, 40)}`, performance.now() - t);
  });
  const tarn = (db.client as { pool?: { on(e: string, f: (id: number) => void): void } }).pool;
  const acquiring = new Map<number, number>();
  tarn?.on('acquireRequest', (id) => acquiring.set(id, performance.now()));
  tarn?.on('acquireSuccess', (id) => {
    const t = acquiring.get(id);
    acquiring.delete(id);
    if (t !== undefined) add('pool acquire', performance.now() - t);
  });
  const svc = client.workflowService as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const signal = svc.signalWorkflowExecution!.bind(svc);
  svc.signalWorkflowExecution = async (...a: unknown[]) => {
    const t = performance.now();
    try {
      return await signal(...a);
    } finally {
      add('temporal signal', performance.now() - t);
    }
  };
  const principalCache = new PrincipalCache(db);
  await principalCache.start();
  const { server, port } = await listenBenchApi({ db, client, pii: new Pii({ personRefKey: c.personRefKey, piiKey: c.piiKey }), taskQueue: c.taskQueue, codecKeys, principalCache });
  // Requests received and not yet answered: the bench waits for none before it counts check-ins.
  let inflight = 0;
  server.on('request', (_req, res) => {
    inflight++;
    res.once('close', () => inflight--);
  });
  process.on('message', (m: unknown) => {
    if (m === 'queries') process.send!({ queries, trace, inflight });
    if (m === 'stop') {
      server.closeAllConnections();
      server.close(() => {
        void principalCache
          .stop()
          .then(() => client.connection.close())
          .then(() => db.destroy())
          .finally(() => process.exit(0));
      });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ port });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
