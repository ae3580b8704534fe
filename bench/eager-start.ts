/**
 * Experiment behind figure 6's tuning log (docs/PERFORMANCE.md): does eager workflow start make the
 * bulk-issuance activities' starts faster? Not part of `npm run bench`; run with
 *
 *   npx tsx bench/eager-start.ts            # BENCH_EAGER_SLOTS=40,5 BENCH_EAGER_STARTS=3000 BENCH_EAGER_ROUNDS=4
 *
 * As the chunk activity does, starts go through the client of a worker's own NativeConnection
 * (`worker.client`, what `Context.current().client` is) to that worker's task queue, 32 in flight, on
 * the bench's dev server (SQLite file, WAL pragmas). For each workflow-task slot count, rounds
 * alternate eager and plain starts on a fresh worker and task queue; each round records starts/s and
 * how many starts the server took eagerly. Results: bench/results/eager-start/results.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { executableFor, provisionTemporal } from '../lib/temporal-binaries';
import { envInt, pool, round } from './lib';

const SLOTS = (process.env.BENCH_EAGER_SLOTS || '40,5').split(',').map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 1) throw new Error('BENCH_EAGER_SLOTS must be a comma list of positive integers');
  return n;
});
const STARTS = envInt('BENCH_EAGER_STARTS', 3000);
const ROUNDS = envInt('BENCH_EAGER_ROUNDS', 4);
const CONCURRENCY = 32;

async function main(): Promise<void> {
  const bins = provisionTemporal();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const tmp = mkdtempSync(path.join(tmpdir(), 'eager-start-'));
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: executableFor(bins.cli),
      dbFilename: path.join(tmp, 'temporal.sqlite'),
      extraArgs: ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'],
    },
  });
  const rounds: { slots: number; eager: boolean; startsPerSecond: number; eagerlyStarted: number }[] = [];
  try {
    for (const slots of SLOTS) {
      for (let r = 0; r < ROUNDS; r++) {
        const eager = r % 2 === 0;
        const taskQueue = `eager-start-${slots}-${r}-${Date.now()}`;
        const worker = await Worker.create({
          connection: env.nativeConnection,
          taskQueue,
          workflowsPath: require.resolve('./trivial-workflow'),
          maxConcurrentWorkflowTaskExecutions: slots,
        });
        await worker.runUntil(async () => {
          let eagerlyStarted = 0;
          const ms = await pool(STARTS, CONCURRENCY, async (i) => {
            const h = await worker.client!.workflow.start('trivialWorkflow', { taskQueue, workflowId: `${taskQueue}-${i}`, requestEagerStart: eager, args: [] });
            if (h.eagerlyStarted) eagerlyStarted += 1;
          });
          rounds.push({ slots, eager, startsPerSecond: round((STARTS * 1000) / ms, 1), eagerlyStarted });
          console.log(JSON.stringify(rounds[rounds.length - 1]));
          // Let the worker drain the round's first workflow tasks before the next round starts.
          await new Promise((res) => setTimeout(res, 3000));
        });
      }
    }
  } finally {
    await env.teardown();
    rmSync(tmp, { recursive: true, force: true });
  }
  const out = path.join(__dirname, 'results', 'eager-start');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, 'results.json'),
    JSON.stringify({ startedAt: new Date().toISOString(), starts: STARTS, concurrency: CONCURRENCY, rounds }, null, 2) + '\n',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
