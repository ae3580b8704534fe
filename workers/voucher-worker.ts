/** Builds the voucher worker: workflows from `workflows/`, activities bound to injected dependencies. */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { dataConverter, type CodecKeys } from '../lib/codec';
import { requestIdActivityInterceptor } from '../lib/request-id';
import { createAllActivities } from '../activities';
import type { ActivityDeps } from '../activities/voucher-activities';
import type { Db } from '../db/connection';
import { VOUCHER_TASK_QUEUE } from '../workflows/voucher/contract';

export interface VoucherWorkerDeps {
  connection: NativeConnection;
  namespace?: string;
  db: Db;
  /** Payload codec keys (lib/codec.ts): payloads leave the worker encrypted. */
  codecKeys: CodecKeys;
  taskQueue?: string;
  /** A prebuilt bundle (tests, production images); otherwise `workflows/` is bundled at start. */
  workflowBundlePath?: string;
  options?: Partial<WorkerOptions>;
  /** Extra activity dependencies (clock, keys) beyond the database. */
  activityDeps?: Partial<ActivityDeps>;
}

/**
 * Worker options the project sets (everything else is the SDK's default). Workflow tasks at once: 5,
 * not the SDK's 40. A worker process runs its workflow code on one thread, and a voucher's workflow
 * task holds its slot while its local activity writes the read model; measured on figure 1 (2 cores,
 * docs/PERFORMANCE.md "What moved the figures"), 5 slots gave the real lifecycle 0.74–0.81 of the
 * skeleton's throughput against 0.55–0.65 with 40 (10: 0.66–0.71; 2: 0.73) and up to ≈ 40 % more real
 * lifecycles per second in runs side by side — fewer tasks contending for the thread, the database and
 * the cores, each finishing sooner. More cores per process: raise it with
 * WORKER_MAX_CONCURRENT_WORKFLOW_TASKS, or run more worker processes (docs/SCALING.md).
 */
export const DEFAULT_WORKER_TUNING = { maxConcurrentWorkflowTaskExecutions: 5 } as const satisfies Partial<WorkerOptions>;

export function workflowSource(bundlePath?: string): Pick<WorkerOptions, 'workflowsPath' | 'workflowBundle'> {
  return bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../workflows') };
}

export async function createVoucherWorker(d: VoucherWorkerDeps): Promise<Worker> {
  return Worker.create({
    connection: d.connection,
    namespace: d.namespace ?? 'default',
    taskQueue: d.taskQueue ?? VOUCHER_TASK_QUEUE,
    ...workflowSource(d.workflowBundlePath),
    activities: createAllActivities({ db: d.db, ...d.activityDeps }),
    dataConverter: dataConverter(d.codecKeys),
    interceptors: {
      activity: [requestIdActivityInterceptor],
      // Used when bundling here; a prebuilt bundle has them built in (scripts/bundle-workflows.ts).
      workflowModules: d.workflowBundlePath ? undefined : [require.resolve('../workflows/request-id-interceptors')],
    },
    ...DEFAULT_WORKER_TUNING,
    ...d.options,
  });
}
