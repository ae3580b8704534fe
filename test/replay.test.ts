/**
 * Replays histories recorded from real runs (test/histories, made by scripts/record-histories.ts)
 * against today's workflow code: a change that breaks determinism for running vouchers fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { quietRuntime } from './helpers/env';

const DIR = path.join(__dirname, 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

test('the recorded histories exist and cover the lifecycle, with and without the claim step and changed-only search attributes (R2.7 R3.1 R3.2 R3.3 R3.8 R3.9 R3.10)', () => {
  expect(files).toEqual(
    expect.arrayContaining([
      'expired-not-activated.json',
      'expired-not-used.json',
      'directed-settled.json',
      'general-settled.json',
      'revoked.json',
      'claim-expired-not-claimed.json',
      'claim-directed-settled.json',
      'sa-on-change-claim-directed-settled.json',
      'projected-at-issue-claim-directed-settled.json',
    ]),
  );
});

test('every recorded history replays without a nondeterminism error', async () => {
  quietRuntime();
  const histories = files.map((f) => ({ workflowId: f.replace(/\.json$/, ''), history: historyFromJSON(JSON.parse(readFileSync(path.join(DIR, f), 'utf8'))) }));
  const bundle = process.env.TEST_WORKFLOW_BUNDLE;
  const options = bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') };
  const results: { id: string; error?: unknown }[] = [];
  for await (const r of Worker.runReplayHistories(options, histories)) results.push({ id: r.workflowId, error: r.error });
  expect(results).toHaveLength(files.length);
  for (const r of results) expect({ id: r.id, error: r.error ? String(r.error) : undefined }).toEqual({ id: r.id, error: undefined });
});
