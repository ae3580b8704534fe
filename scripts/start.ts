/**
 * `npm start`: the whole system on one machine. Temporal dev server (persistent SQLite under .data/,
 * Web UI on :8233, search attributes registered) unless TEMPORAL_ADDRESS is set; PostgreSQL from
 * DATABASE_URL or embedded under .data/pg; migrations; one worker; the API on :3000. Ctrl-C stops all;
 * a second `npm start` resumes the same vouchers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { startApi } from '../api/main';
import { createDb } from '../db/connection';
import { migrateLatest } from '../db/migrate';
import { seedDev } from '../db/seeds/dev';
import { loadConfig } from '../lib/config';
import { createLogger } from '../lib/logger';
import { parseCodecKeys } from '../lib/codec';
import { Pii } from '../lib/pii';
import { createDatabase, startEmbeddedPostgres, type RunningPostgres } from '../lib/postgres';
import { registerSearchAttributes } from '../lib/search-attributes';
import { provisionTemporal } from '../lib/temporal-binaries';
import { ensureRetentionSchedule } from '../workflows/maintenance/schedule';
import { ensureSettlementSchedule } from '../workflows/settlement/schedule';
import { connectClient } from '../lib/temporal-connection';
import { installWorkerRuntime, startWorker } from '../workers/main';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../workflows/voucher/search-attributes';

const ROOT = path.resolve(__dirname, '..');
const DATA = path.join(ROOT, '.data');
const log = createLogger(undefined, 'start');

interface DevSecrets {
  personRefKey: string;
  piiKey: string;
  codecKeys: string;
}

/** Keys generated once per `.data/` (git-ignored), so a restart decrypts what the last run wrote. */
function devSecrets(): DevSecrets {
  const file = path.join(DATA, 'secrets.json');
  const stored: Partial<DevSecrets> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const s: DevSecrets = {
    personRefKey: stored.personRefKey ?? randomBytes(32).toString('hex'),
    piiKey: stored.piiKey ?? randomBytes(32).toString('hex'),
    codecKeys: stored.codecKeys ?? `k1:${randomBytes(32).toString('hex')}`,
  };
  writeFileSync(file, JSON.stringify(s), { mode: 0o600 });
  return s;
}

async function waitForTemporal(address: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const c = await Connection.connect({ address, connectTimeout: 2000 });
      await c.healthService.check({});
      await c.close();
      return;
    } catch (e) {
      if (Date.now() > until) throw new Error(`Temporal at ${address} not reachable: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const SA_TYPE: Record<string, string> = { Keyword: 'Keyword', Datetime: 'Datetime', Double: 'Double' };

async function main() {
  mkdirSync(DATA, { recursive: true });
  const config = loadConfig();
  const dev = devSecrets();
  const keys = {
    personRefKey: process.env.PERSON_REF_KEY ? config.personRefKey : dev.personRefKey,
    piiKey: process.env.PII_KEY ? config.piiKey : dev.piiKey,
  };
  const codecKeys = parseCodecKeys(process.env.TEMPORAL_CODEC_KEYS ? config.codecKeys : dev.codecKeys, config.codecKeyId);
  const stops: (() => Promise<void>)[] = [];
  let temporalChild: ChildProcess | undefined;

  // Temporal
  let address = config.temporalAddress;
  if (!address) {
    const { cli } = provisionTemporal((m) => log.info(m));
    if (!cli) throw new Error('no Temporal CLI: set TEMPORAL_CLI_PATH or TEMPORAL_ADDRESS');
    address = '127.0.0.1:7233';
    const args = ['server', 'start-dev', '--db-filename', path.join(DATA, 'temporal.db'), '--ip', '127.0.0.1', '--port', '7233', '--ui-port', '8233', '--log-level', 'warn',
      // The UI decodes payloads through the API's codec endpoint (operator key required).
      '--ui-codec-endpoint', `http://127.0.0.1:${config.apiPort}/codec`,
      // WAL with normal sync: ~4x the lifecycle throughput of SQLite's defaults (docs/PERFORMANCE.md).
      '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'];
    for (const k of ALL_SEARCH_ATTRIBUTE_KEYS) {
      const t = k.type.charAt(0).toUpperCase() + k.type.slice(1).toLowerCase();
      args.push('--search-attribute', `${k.name}=${SA_TYPE[t] ?? t}`);
    }
    // Own process group: Ctrl-C reaches us first, and we stop the server after the worker drained.
    temporalChild = spawn(cli, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    log.info({ address, ui: 'http://127.0.0.1:8233' }, 'Temporal dev server starting');
  }
  await waitForTemporal(address);
  {
    const c = await Connection.connect({ address });
    await registerSearchAttributes(c, config.temporalNamespace);
    await c.close();
  }

  // PostgreSQL
  let databaseUrl = config.databaseUrl;
  let pg: RunningPostgres | undefined;
  if (!databaseUrl) {
    pg = await startEmbeddedPostgres(path.join(DATA, 'pg'), 54329, (m) => log.debug(m));
    databaseUrl = await createDatabase(pg.serverUrl, 'vouchers', { ifMissing: true });
    log.info({ port: 54329 }, 'embedded PostgreSQL started');
  }
  const db = createDb(databaseUrl);
  await migrateLatest(db);
  const pii = new Pii(keys);
  const seeded = await seedDev(db, pii, Date.now() + 14 * 86_400_000);
  if (seeded) {
    writeFileSync(path.join(DATA, 'dev-keys.json'), JSON.stringify(seeded, null, 2), { mode: 0o600 });
    log.info({ file: '.data/dev-keys.json' }, 'seeded demo data; API keys per role written');
  }
  await db.destroy();

  installWorkerRuntime(config.workerMetricsAddress);
  const worker = await startWorker({ databaseUrl, temporalAddress: address, namespace: config.temporalNamespace, codecKeys, pii, maxConcurrentWorkflowTasks: config.workerMaxConcurrentWorkflowTasks });
  stops.push(() => worker.stop());
  const api = await startApi({
    databaseUrl,
    temporalAddress: address,
    namespace: config.temporalNamespace,
    port: config.apiPort,
    ...keys,
    codecKeys,
    temporalUiOrigin: config.temporalUiOrigin,
    keepAliveTimeoutMs: config.apiKeepAliveTimeoutMs,
  });
  stops.unshift(() => api.stop());
  // Daily jobs as Temporal Schedules (idempotent: an existing schedule is updated).
  {
    const client = await connectClient(address, config.temporalNamespace, codecKeys);
    await ensureSettlementSchedule(client);
    await ensureRetentionSchedule(client);
    await client.connection.close();
  }
  log.info({ api: `http://127.0.0.1:${config.apiPort}`, temporalUi: config.temporalAddress ? undefined : 'http://127.0.0.1:8233' }, 'ready');

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log.info('stopping');
    for (const s of stops) await s().catch((e) => log.error({ err: e }, 'stop failed'));
    if (pg) await pg.stop();
    if (temporalChild && temporalChild.exitCode === null) {
      const exited = new Promise((r) => temporalChild!.once('exit', r));
      temporalChild.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((e) => {
  log.error({ err: e }, 'start failed');
  process.exit(1);
});
