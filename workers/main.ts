/** Worker process entry point (`npx tsx workers/main.ts`): needs DATABASE_URL and TEMPORAL_ADDRESS. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createDb } from '../db/connection';
import { parseCodecKeys, type CodecKeys } from '../lib/codec';
import { loadConfig } from '../lib/config';
import { Pii } from '../lib/pii';
import { connectNative } from '../lib/temporal-connection';
import { createVoucherWorker } from './voucher-worker';

/** Installs the SDK runtime once per process with Prometheus metrics at `bindAddress`. */
export function installWorkerRuntime(bindAddress: string): void {
  Runtime.install({
    logger: new DefaultLogger((process.env.LOG_LEVEL?.toUpperCase() as 'INFO') || 'INFO'),
    telemetryOptions: { metrics: { prometheus: { bindAddress } } },
  });
}

export async function startWorker(opts: { databaseUrl: string; temporalAddress: string; namespace: string; codecKeys: CodecKeys; pii: Pii; workflowBundlePath?: string; maxConcurrentWorkflowTasks?: number }) {
  const db = createDb(opts.databaseUrl);
  const connection = await connectNative(opts.temporalAddress);
  const worker = await createVoucherWorker({ connection, namespace: opts.namespace, db, codecKeys: opts.codecKeys, workflowBundlePath: opts.workflowBundlePath, activityDeps: { pii: opts.pii }, options: opts.maxConcurrentWorkflowTasks ? { maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTasks } : undefined });
  const running = worker.run();
  return {
    worker,
    running,
    async stop() {
      // The SDK may already be shutting down on SIGINT/SIGTERM by itself.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await db.destroy();
    },
  };
}

if (require.main === module) {
  const c = loadConfig();
  if (!c.databaseUrl || !c.temporalAddress) {
    console.error('DATABASE_URL and TEMPORAL_ADDRESS must be set (or use `npm start`)');
    process.exit(2);
  }
  installWorkerRuntime(c.workerMetricsAddress);
  // The SDK's worker shuts down gracefully on SIGINT/SIGTERM by itself.
  startWorker({ databaseUrl: c.databaseUrl, temporalAddress: c.temporalAddress, namespace: c.temporalNamespace, codecKeys: parseCodecKeys(c.codecKeys, c.codecKeyId), pii: new Pii(c), maxConcurrentWorkflowTasks: c.workerMaxConcurrentWorkflowTasks }).then(async (w) => {
    await w.running;
    process.exit(0);
  });
}
