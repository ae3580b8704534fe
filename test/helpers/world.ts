/**
 * The set-up most integration tests share: a time-skipping Temporal server, the test database and a
 * worker on a task queue of its own, stopped together.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Db } from '../../db/connection';
import { testDb, testWorker, timeSkippingEnv, uniqueTaskQueue } from './env';

export interface World {
  env: TestWorkflowEnvironment;
  db: Db;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function timeSkippingWorld(name: string, activities?: object): Promise<World> {
  const env = await timeSkippingEnv();
  const db = testDb();
  const taskQueue = uniqueTaskQueue(name);
  const worker = await testWorker(env, db, taskQueue, activities);
  const running = worker.run();
  return {
    env,
    db,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await env.teardown();
      await db.destroy();
    },
  };
}

/** Polls `fn` until `ok` holds or `ms` pass; returns the last value (the caller asserts on it). */
export async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
