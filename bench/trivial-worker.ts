/**
 * A worker for figure 6's baseline workflow (bench/trivial-workflow.ts): bundled into the bench's
 * temporary directory and created with the same connection, data converter and worker options as the
 * real worker, on its own task queue. Shared by the bulk figure and its start-cost decomposition.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { bundleWorkflowCode, Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';

export async function createTrivialWorker(
  c: { connection: NativeConnection; dataConverter: DataConverter; workerOptions: Partial<WorkerOptions>; tmp: string },
  taskQueue: string,
): Promise<Worker> {
  const codePath = path.join(c.tmp, `trivial-bundle-${taskQueue}.js`);
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./trivial-workflow'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
  });
  writeFileSync(codePath, code);
  return Worker.create({ connection: c.connection, namespace: 'default', taskQueue, workflowBundle: { codePath }, dataConverter: c.dataConverter, ...c.workerOptions });
}
