/**
 * Cross-version replay: a worker built from an older commit and today's worker must be able to take
 * over each other's running vouchers, in the directions the versioning promises.
 *
 * The older commit is picked from BASELINES below (the last release the production workers may still
 * run). Its workflow code is taken from git (`git archive`, read-only; node_modules resolved from this
 * checkout) and bundled; histories are replayed with Worker.runReplayHistories.
 *
 *  (b) backward — ALWAYS promised: every history the baseline recorded (its own test/histories) replays
 *      on today's code. Vouchers live for months; a deploy must never break the ones already running.
 *  (a) forward (rollback) — promised only for lifecycles that use nothing the baseline lacks: histories
 *      recorded by today's code (recorded fresh here, plus today's test/histories) whose workflow input
 *      and events fall under the baseline's `rollbackSafe` predicate replay on the baseline's code, so
 *      a worker rolled back to it keeps those vouchers running. Histories that use a newer feature (for
 *      the claim step, R2.7: inputs with `awaitsClaim`; changed-only search-attribute upserts: inputs
 *      with `searchAttributesOnChange`; list vouchers whose state at issue the issuer projected: inputs
 *      with `projectedAtIssue`; or a `patched()` marker the baseline does not know) are not
 *      promised; their result is reported, not asserted.
 *
 * A clean CI clone has full history. If the baseline commit is missing (a shallow clone) the test fails
 * with what to do, rather than skipping.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { createAllActivities } from '../activities';
import { buildVoucherInput } from '../api/voucher-input';
import { registerSearchAttributes } from '../lib/search-attributes';
import { executableFor } from '../lib/temporal-binaries';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, completeSignal, enrolUpdate, revokeSignal } from '../workflows/voucher/messages';
import { ownDatabase } from './helpers/drill';
import { quietRuntime, testPii, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uniqueOccupation } from './helpers/fixtures';

type History = temporal.api.history.v1.IHistory;
const EventType = temporal.api.enums.v1.EventType;

interface Baseline {
  commit: string;
  name: string;
  /** IDs of the patches its workflow code already knows (its patched()/deprecatePatch() calls). */
  knownPatches: string[];
  /** May a worker rolled back to this commit take over a voucher with this history? (direction a) */
  rollbackSafe(h: History, b: Baseline): boolean;
}

/**
 * Uses nothing the baseline lacks: no claim step (R2.7), no changed-only search-attribute upserts and no
 * state projected at issue in the input, no patch the baseline does not know.
 */
const withoutClaimStep = (h: History, b: Baseline) => {
  const input = workflowInput(h);
  return !input?.awaitsClaim && !input?.searchAttributesOnChange && !input?.projectedAtIssue && patchMarkers(h).every((id) => b.knownPatches.includes(id));
};

/**
 * The commits to compare with, newest first; the first is used. Add the new release here when one is
 * cut (and keep the older ones while workers of that release may still run).
 */
const BASELINES: Baseline[] = [
  {
    commit: '7192fe17d338675d5ab8a725be07437c185d9a2b',
    name: 'the release before changed-only search-attribute upserts',
    knownPatches: [],
    // It knows the claim step; it upserts the whole set of search attributes on every publication.
    rollbackSafe: (h, b) => !workflowInput(h)?.searchAttributesOnChange && !workflowInput(h)?.projectedAtIssue && patchMarkers(h).every((id) => b.knownPatches.includes(id)),
  },
  {
    commit: 'e1086c7de49e361e7719d275ea85bb122883df5d',
    name: 'the release before the voucher claim step (R2.7)',
    knownPatches: [],
    rollbackSafe: withoutClaimStep,
  },
];
const BASELINE = BASELINES[0]!;

const ROOT = path.resolve(__dirname, '..');

function git(args: string[], input?: Buffer): Buffer {
  return execFileSync('git', ['-C', ROOT, ...args], { input, maxBuffer: 256 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** The first payload of the start event, decoded when it is plain JSON (histories are recorded without the codec). */
function workflowInput(h: History): Record<string, unknown> | undefined {
  const start = h.events?.[0]?.workflowExecutionStartedEventAttributes;
  const p = start?.input?.payloads?.[0];
  if (!p?.data) return undefined;
  const encoding = Buffer.from(p.metadata?.encoding ?? []).toString();
  if (encoding !== 'json/plain') return undefined;
  return JSON.parse(Buffer.from(p.data).toString()) as Record<string, unknown>;
}

/**
 * IDs of the non-deprecated patch markers (`patched('…')`) in a history: code without that patched()
 * call fails replay on them ("Non-deprecated patch marker encountered … no corresponding change
 * command", checked with SDK 1.24); deprecatePatch() markers replay either way.
 */
function patchMarkers(h: History): string[] {
  const ids: string[] = [];
  for (const e of h.events ?? []) {
    const m = e.markerRecordedEventAttributes;
    if (e.eventType !== EventType.EVENT_TYPE_MARKER_RECORDED || m?.markerName !== 'core_patch') continue;
    // sdk-core writes `patch-data` = JSON { id, deprecated } (older cores: `patch_id` as plain bytes).
    const json = m.details?.['patch-data']?.payloads?.[0]?.data;
    const plain = m.details?.['patch_id']?.payloads?.[0]?.data;
    if (json) {
      const d = JSON.parse(Buffer.from(json).toString()) as { id?: string; deprecated?: boolean };
      if (!d.deprecated) ids.push(String(d.id ?? ''));
    } else if (plain) ids.push(Buffer.from(plain).toString());
    else ids.push('(unreadable patch marker)');
  }
  return ids;
}

let tmp: string;
let oldBundle: string;
let newOptions: ReplayWorkerOptions;
let oldOptions: ReplayWorkerOptions;
/** Histories recorded by the baseline (its test/histories). */
const baselineHistories: { workflowId: string; history: History }[] = [];
/** Histories recorded by today's code: fresh here, and today's test/histories. */
const currentHistories: { workflowId: string; history: History }[] = [];

async function replay(options: ReplayWorkerOptions, histories: { workflowId: string; history: History }[]) {
  const out: { id: string; error?: string }[] = [];
  for await (const r of Worker.runReplayHistories(options, histories)) out.push({ id: r.workflowId, error: r.error ? String(r.error).slice(0, 400) : undefined });
  return out;
}

/** Records a few lifecycles with today's code (time-skipping server, a database of its own). */
async function recordCurrent(bundlePath: string | undefined): Promise<void> {
  const own = await ownDatabase('rpl');
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: executableFor(process.env.TEMPORAL_TEST_SERVER_PATH) } });
  try {
    await registerSearchAttributes(env.connection);
    const db = own.db;
    const taskQueue = uniqueTaskQueue('replay-x');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../workflows') }),
      activities: createAllActivities({ db, pii: testPii }),
    });
    await worker.runUntil(async () => {
      const start = async (type: 'general' | 'directed', occupationCode?: string) => {
        const person = await makePerson(db, testPii, { employmentDistrict: '330603' });
        // Direct starts, as vouchers obtained at issue: the lifecycle both versions know.
        const input = await buildVoucherInput(db, { type, issuerDistrict: '330602', personRef: person.personRef, obtainedAt: await env.currentTimeMs(), occupationCode });
        // As vouchers issued before the newer input flags: the part of today's code a rollback must keep running.
        delete input.searchAttributesOnChange;
        return env.client.workflow.start('voucherWorkflow', { workflowId: voucherWorkflowId(input.voucherNo), taskQueue, args: [input] });
      };
      const save = async (name: string, h: { fetchHistory(): Promise<History> }) => {
        // Through JSON, exactly as recorded files are read.
        currentHistories.push({ workflowId: `current:${name}`, history: historyFromJSON(JSON.parse(historyToJSON(await h.fetchHistory()))) });
      };
      const revoked = await start('general');
      await revoked.signal(revokeSignal, { reason: 'recorded for cross-version replay', by: 'test' });
      await revoked.result();
      await save('revoked', revoked);

      const occ = uniqueOccupation();
      const inst = await makeInstitution(db);
      const cls = await makeClass(db, { institutionId: inst, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions: 10 });
      await makeCatalogueEntry(db, { occupationCode: occ, level: cls.level, amountFen: 150_000 });
      const settled = await start('directed', occ);
      await settled.executeUpdate(activateUpdate, { args: [{}] });
      await settled.executeUpdate(activateUpdate, { args: [{}] }).catch(() => undefined); // refused: never in history
      await settled.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId: inst, review: { passed: true } }] });
      for (const s of [...cls.sessionIds.slice(0, 9), cls.sessionIds[0]!]) await settled.signal(checkInSignal, { sessionId: s, verifiedMinutes: 90, at: 0 });
      await settled.signal(completeSignal, { assessmentPassed: true });
      await settled.result();
      await save('directed-settled', settled);

      const expired = await start('general');
      await expired.executeUpdate(activateUpdate, { args: [{}] });
      await expired.result(); // time skips to the use deadline, through the reminders
      await save('expired-not-used', expired);
    });
  } finally {
    await env.teardown();
    await own.drop();
  }
}

beforeAll(async () => {
  quietRuntime();
  // ---- the baseline's code, from git ----------------------------------------------------------------
  try {
    git(['cat-file', '-e', `${BASELINE.commit}^{commit}`]);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw new Error('cross-version replay needs git (and the repository history) to read the baseline commit');
    const shallow = existsSync(path.join(ROOT, '.git', 'shallow'));
    throw new Error(
      `cross-version replay: baseline commit ${BASELINE.commit} (${BASELINE.name}) is not in this clone` +
        (shallow ? ' — it is a shallow clone: run `git fetch --unshallow` (CI: fetch-depth: 0)' : ' — fetch it, or update BASELINES in test/replay-cross-version.test.ts'),
    );
  }
  tmp = mkdtempSync(path.join(os.tmpdir(), 'replay-baseline-'));
  const tar = git(['archive', '--format=tar', BASELINE.commit]);
  const x = spawnSync('tar', ['-x', '-C', tmp], { input: tar });
  if (x.status !== 0) throw new Error(`tar: ${x.stderr.toString()}`);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
  const wf = (f: string) => path.join(tmp, 'workflows', f);
  ({ code: oldBundle } = await bundleWorkflowCode({
    workflowsPath: wf('index.ts'),
    // As the baseline's scripts/bundle-workflows.ts bundled it (the failure converter and interceptors when it had them).
    ...(existsSync(wf('failure-converter.ts')) ? { failureConverterPath: wf('failure-converter.ts') } : {}),
    ...(existsSync(wf('request-id-interceptors.ts')) ? { workflowInterceptorModules: [wf('request-id-interceptors.ts')] } : {}),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never,
  }));
  oldOptions = { workflowBundle: { code: oldBundle } };
  const bundle = process.env.TEST_WORKFLOW_BUNDLE;
  newOptions = bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') };

  // ---- histories --------------------------------------------------------------------------------------
  const files = git(['ls-tree', '--name-only', BASELINE.commit, 'test/histories/']).toString().split('\n').filter((f) => f.endsWith('.json'));
  for (const f of files) baselineHistories.push({ workflowId: `baseline:${path.basename(f, '.json')}`, history: historyFromJSON(JSON.parse(git(['show', `${BASELINE.commit}:${f}`]).toString())) });
  const dir = path.join(ROOT, 'test', 'histories');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    currentHistories.push({ workflowId: `tree:${path.basename(f, '.json')}`, history: historyFromJSON(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))) });
  }
  await recordCurrent(bundle);
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test(`R2.7 cross-version replay (b): every history recorded by the baseline replays on today's workflow code`, async () => {
  expect(baselineHistories.length).toBeGreaterThanOrEqual(5);
  // The baseline's own bundle replays them too (the bundle from git is sound).
  expect((await replay(oldOptions, baselineHistories)).filter((r) => r.error)).toEqual([]);
  const results = await replay(newOptions, baselineHistories);
  expect(results.map((r) => r.id).sort()).toEqual(baselineHistories.map((h) => h.workflowId).sort());
  for (const r of results) expect(r).toEqual({ id: r.id, error: undefined });
}, 180_000);

test(`R2.7 cross-version replay (a): histories recorded by today's code replay on the baseline's code where rolling back is promised`, async () => {
  const promised = currentHistories.filter((h) => BASELINE.rollbackSafe(h.history, BASELINE));
  const other = currentHistories.filter((h) => !BASELINE.rollbackSafe(h.history, BASELINE));
  // The fresh recordings are lifecycles both versions know. If today's code marks every history with a
  // patch the baseline lacks (a non-deprecated patched() call on every path), nothing can be rolled back
  // to the baseline any more: that has to be a decision (move the baseline in BASELINES), not an accident.
  if (promised.length === 0) {
    throw new Error(
      `no history recorded by today's code is safe to roll back to ${BASELINE.commit.slice(0, 7)} (${BASELINE.name}); ` +
        `patch markers seen: ${[...new Set(currentHistories.flatMap((h) => patchMarkers(h.history)))].join(', ') || 'none'}. ` +
        'Keep patched() inside the new feature\'s own path, or update BASELINES if the rollback promise is given up.',
    );
  }
  // Today's code replays everything it recorded.
  expect((await replay(newOptions, currentHistories)).filter((r) => r.error)).toEqual([]);
  const results = await replay(oldOptions, promised);
  expect(results).toHaveLength(promised.length);
  for (const r of results) expect(r).toEqual({ id: r.id, error: undefined });
  if (other.length) {
    const unpromised = await replay(oldOptions, other);
    console.log(
      `cross-version replay: not promised on ${BASELINE.commit.slice(0, 7)} (newer features): ` +
        unpromised.map((r) => `${r.id} ${r.error ? 'does not replay' : 'replays'}`).join('; '),
    );
  }
}, 180_000);
