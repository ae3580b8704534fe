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
    ...d.options,
  });
}
