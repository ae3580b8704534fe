import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createAllActivities } from '../../activities';
import { createDb, type Db } from '../../db/connection';
import { migrateLatest } from '../../db/migrate';
import { createDatabase, dropDatabase } from '../../lib/postgres';
import { executableFor } from '../../lib/temporal-binaries';
import { Pii } from '../../lib/pii';
import { registerSearchAttributes } from '../../lib/search-attributes';
import { dataConverter, parseCodecKeys } from '../../lib/codec';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../../workflows/voucher/search-attributes';
import { requestIdActivityInterceptor, requestIdClientInterceptor } from '../../lib/request-id';

export function testDb(): Db {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests through `npm test`');
  return createDb(url, { max: 5 });
}

export const testPii = new Pii({ personRefKey: '1'.repeat(64), piiKey: '2'.repeat(64) });

/** Payload codec keys of the test run: every test client and worker encrypts like production. */
export const testCodecKeys = parseCodecKeys(`t1:${'3'.repeat(64)}`);
export const testDataConverter = dataConverter(testCodecKeys);

let runtimeInstalled = false;
/** Quiet SDK logs in tests (warnings and errors only). */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    /* already installed by another helper in this worker */
  }
}

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: executableFor(process.env.TEMPORAL_TEST_SERVER_PATH) },
    client: { dataConverter: testDataConverter, interceptors: { workflow: [requestIdClientInterceptor] } },
  });
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  return env;
}

type DevServerOptions = NonNullable<NonNullable<Parameters<typeof TestWorkflowEnvironment.createLocal>[0]>['server']>;

/**
 * The Temporal dev server (the pinned CLI) with the voucher search attributes registered, and a client
 * that encrypts like production. `server` adds options (the Web UI, logging).
 */
export async function devServerEnv(server: Partial<DevServerOptions> = {}): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    server: { executable: executableFor(process.env.TEMPORAL_CLI_PATH), searchAttributes: ALL_SEARCH_ATTRIBUTE_KEYS, ...server },
    client: { dataConverter: testDataConverter },
  });
}

export function uniqueTaskQueue(name: string): string {
  return `${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function testWorker(env: TestWorkflowEnvironment, db: Db, taskQueue: string, activities?: object): Promise<Worker> {
  const bundle = process.env.TEST_WORKFLOW_BUNDLE;
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../../workflows') }),
    activities: activities ?? createAllActivities({ db }),
    dataConverter: testDataConverter,
    interceptors: { activity: [requestIdActivityInterceptor] },
  });
}

/**
 * A database of the test file's own (created on the test server, migrated; `drop()` destroys the pool
 * and drops it): for files that issue many vouchers or run settlement batches, which must not move the
 * counts other test files compare while they run in parallel.
 */
export interface OwnDatabase {
  url: string;
  name: string;
  db: Db;
  drop(): Promise<void>;
}

export async function ownDatabase(suffix: string): Promise<OwnDatabase> {
  const server = process.env.TEST_DATABASE_URL;
  if (!server) throw new Error('TEST_DATABASE_URL is not set: run the tests through `npm test`');
  const name = `${new URL(server).pathname.slice(1)}_${suffix}`.slice(0, 63);
  const url = await createDatabase(server, name);
  const db = createDb(url, { max: 5 });
  await migrateLatest(db);
  return {
    url,
    name,
    db,
    async drop() {
      await db.destroy();
      await dropDatabase(server, name);
    },
  };
}
