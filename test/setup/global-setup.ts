/**
 * Provisions what the tests need, once per `npm test`: the Temporal binaries, a throwaway PostgreSQL
 * database (on DATABASE_URL's server, or an embedded server under .data/), migrations, and one
 * workflow bundle shared by every test worker. Values reach test files through process.env.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createDb } from '../../db/connection';
import { migrateLatest } from '../../db/migrate';
import { createDatabase, freePort, startEmbeddedPostgres } from '../../lib/postgres';
import { provisionChromium } from '../../lib/chromium';
import { ensureVenvTool, provisionTemporal } from '../../lib/temporal-binaries';
import { bundleWorkflowsTo } from '../../scripts/bundle-workflows';

const ROOT = path.resolve(__dirname, '..', '..');

export default async function globalSetup(): Promise<void> {
  const bins = provisionTemporal();
  if (bins.cli) process.env.TEMPORAL_CLI_PATH = bins.cli;
  if (bins.testServer) process.env.TEMPORAL_TEST_SERVER_PATH = bins.testServer;
  // The API fuzzer (schemathesis, pinned) for test/api-fuzz.test.ts.
  process.env.SCHEMATHESIS_PATH = ensureVenvTool('schemathesis', 'schemathesis==4.32.5');
  // Debian's chromium for the browser tests (Web UI, statistics page); installed with apt-get if missing.
  const chromiumPath = provisionChromium();
  if (chromiumPath) process.env.CHROMIUM_PATH = chromiumPath;

  const runId = `${Date.now().toString(36)}_${process.pid}`;
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const dir = path.join(ROOT, '.data', `test-pg-${runId}`);
    const pg = await startEmbeddedPostgres(dir, await freePort());
    (globalThis as Record<string, unknown>).__EMBEDDED_PG__ = { pg, dir };
    serverUrl = pg.serverUrl;
  }
  const dbName = `vouchers_test_${runId}`;
  const url = await createDatabase(serverUrl, dbName);
  (globalThis as Record<string, unknown>).__TEST_DB__ = { serverUrl, dbName };
  process.env.TEST_DATABASE_URL = url;
  const db = createDb(url);
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }

  const artifacts = path.join(ROOT, 'test-artifacts');
  mkdirSync(artifacts, { recursive: true });
  const bundle = path.join(ROOT, '.data', `workflow-bundle-${runId}.js`);
  await bundleWorkflowsTo(bundle);
  process.env.TEST_WORKFLOW_BUNDLE = bundle;
  (globalThis as Record<string, unknown>).__TEST_BUNDLE__ = bundle;
}
