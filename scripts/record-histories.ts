/**
 * Records workflow histories from real runs (time-skipping server, real PostgreSQL, the real policy)
 * into test/histories/, for the replay test that guards determinism. Run after an intended change of
 * workflow behaviour. Existing files are kept (they stand for vouchers still running on older code)
 * unless RECORD_OVERWRITE=1; new scenarios are added:
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run record-histories
 */
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, DefaultLogger, Runtime } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { createActivities } from '../activities/voucher-activities';
import { buildVoucherInput } from '../api/voucher-input';
import { startVoucherWorkflow, writeStateAtIssue } from '../activities/issuance-activities';
import { createDb } from '../db/connection';
import { migrateLatest } from '../db/migrate';
import { createDatabase, dropDatabase } from '../lib/postgres';
import { registerSearchAttributes } from '../lib/search-attributes';
import { executableFor, provisionTemporal } from '../lib/temporal-binaries';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { activateUpdate, checkInSignal, claimUpdate, completeSignal, enrolUpdate, revokeSignal } from '../workflows/voucher/messages';
import { voucherWorkflow } from '../workflows/voucher/workflow';
import { testPii } from '../test/helpers/env';
import { makeCatalogueEntry, makeClass, makeInstitution, makePerson, uid, uniqueOccupation } from '../test/helpers/fixtures';

const OUT = path.resolve(__dirname, '..', 'test', 'histories');

async function main() {
  const server = process.env.DATABASE_URL;
  if (!server) throw new Error('set DATABASE_URL to a PostgreSQL server (a throwaway database is created there)');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const bins = provisionTemporal();
  const name = `vouchers_record_${Date.now().toString(36)}`;
  const url = await createDatabase(server, name);
  const db = createDb(url);
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: executableFor(bins.testServer) } });
  try {
    await migrateLatest(db);
    await registerSearchAttributes(env.connection);
    const taskQueue = 'record';
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: require.resolve('../workflows'), activities: createActivities({ db }) });
    await worker.runUntil(async () => {
      const start = async (type: 'general' | 'directed', occupationCode?: string, awaitsClaim?: boolean) => {
        const person = await makePerson(db, testPii, { employmentDistrict: '330603' });
        const input = await buildVoucherInput(db, { type, issuerDistrict: '330602', personRef: person.personRef, obtainedAt: await env.currentTimeMs(), occupationCode, awaitsClaim });
        const handle = await env.client.workflow.start(voucherWorkflow, { workflowId: voucherWorkflowId(input.voucherNo), taskQueue, args: [input] });
        return { handle, person };
      };
      const save = async (scenario: string, h: { workflowId: string; fetchHistory(): Promise<unknown> }) => {
        const history = await h.fetchHistory();
        mkdirSync(OUT, { recursive: true });
        const file = path.join(OUT, `${scenario}.json`);
        if (existsSync(file) && process.env.RECORD_OVERWRITE !== '1') {
          console.log(`kept ${scenario} (RECORD_OVERWRITE=1 replaces it)`);
          return;
        }
        writeFileSync(file, historyToJSON(history as never));
        console.log(`recorded ${scenario}`);
      };

      // 1. Never activated: reminders, then expiry (R3.1, R3.3).
      const a = await start('general');
      await a.handle.result();
      await save('expired-not-activated', a.handle);

      // 2. Activated, then not used: expiry at the use deadline (R3.2, R3.3).
      const b = await start('general');
      await b.handle.executeUpdate(activateUpdate, { args: [{}] });
      await b.handle.result();
      await save('expired-not-used', b.handle);

      // 3. Directed, full class, settled (R3.9, R3.10), with a duplicate check-in and a refused second activation.
      const occ = uniqueOccupation();
      const inst = await makeInstitution(db);
      const cls = await makeClass(db, { institutionId: inst, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions: 20 });
      await makeCatalogueEntry(db, { occupationCode: occ, level: cls.level, amountFen: 150_000 });
      const c = await start('directed', occ);
      await c.handle.executeUpdate(activateUpdate, { args: [{}] });
      await c.handle.executeUpdate(activateUpdate, { args: [{}] }).catch(() => undefined);
      await c.handle.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId: inst, review: { passed: true } }] });
      for (const s of [...cls.sessionIds.slice(0, 15), cls.sessionIds[0]!]) await c.handle.signal(checkInSignal, { sessionId: s, verifiedMinutes: 90, at: 0 });
      await c.handle.signal(completeSignal, { assessmentPassed: true });
      await c.handle.result();
      await save('directed-settled', c.handle);

      // 4. General with a certificate of the right person: settled to the person (R3.8).
      const d = await start('general');
      await d.handle.executeUpdate(activateUpdate, { args: [{}] });
      const cls2 = await makeClass(db, { institutionId: inst, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions: 20 });
      await d.handle.executeUpdate(enrolUpdate, { args: [{ classId: cls2.classId, institutionId: inst, review: { passed: true } }] });
      const cert = uid('CERT');
      await db('certificates').insert({ certificate_no: cert, person_ref: d.person.personRef, occupation_code: occ, level: cls.level, issued_on: '2026-01-01' });
      await d.handle.signal(completeSignal, { assessmentPassed: true, certificateNo: cert });
      await d.handle.result();
      await save('general-settled', d.handle);

      // 5. Revoked while issued.
      const e = await start('general');
      await e.handle.signal(revokeSignal, { reason: 'recorded scenario', by: 'script' });
      await e.handle.result();
      await save('revoked', e.handle);

      // 6. With the claim step (R2.7): never claimed, claim reminders, expiry at the claim deadline (R3.3).
      const f = await start('general', undefined, true);
      await f.handle.result();
      await save('claim-expired-not-claimed', f.handle);

      // 7. With the claim step: activation refused before the claim, claimed, activated, trained, settled.
      const g = await start('directed', occ, true);
      await g.handle.executeUpdate(activateUpdate, { args: [{}] }).catch(() => undefined);
      await env.sleep(30 * 86_400_000);
      const cls3 = await makeClass(db, { institutionId: inst, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions: 20 });
      await g.handle.executeUpdate(claimUpdate, { args: [{ channel: 'alipay' }] });
      await g.handle.executeUpdate(claimUpdate, { args: [{ channel: 'wechat' }] }).catch(() => undefined);
      await g.handle.executeUpdate(activateUpdate, { args: [{}] });
      await g.handle.executeUpdate(enrolUpdate, { args: [{ classId: cls3.classId, institutionId: inst, review: { passed: true } }] });
      for (const s of cls3.sessionIds.slice(0, 14)) await g.handle.signal(checkInSignal, { sessionId: s, verifiedMinutes: 90, at: 0 });
      await g.handle.signal(completeSignal, { assessmentPassed: true });
      await g.handle.result();
      await save('claim-directed-settled', g.handle);

      // 8. Started as the API starts vouchers (search attributes at start) with changed-only upserts:
      //    claimed, activated, trained (one check-in per publication), settled.
      const person = await makePerson(db, testPii, { employmentDistrict: '330603' });
      const input = await buildVoucherInput(db, { type: 'directed', issuerDistrict: '330602', personRef: person.personRef, obtainedAt: await env.currentTimeMs(), occupationCode: occ, awaitsClaim: true });
      /** Claimed, activated, enrolled, four check-ins one workflow task each (as when days apart), settled. */
      const claimTrainSettle = async (h: Awaited<ReturnType<typeof startVoucherWorkflow>>, channel: string) => {
        await h.executeUpdate(claimUpdate, { args: [{ channel }] });
        await h.executeUpdate(activateUpdate, { args: [{}] });
        const cls = await makeClass(db, { institutionId: inst, firstStart: (await env.currentTimeMs()) + 7 * 86_400_000, occupationCode: occ, sessions: 5 });
        await h.executeUpdate(enrolUpdate, { args: [{ classId: cls.classId, institutionId: inst, review: { passed: true } }] });
        for (const s of cls.sessionIds.slice(0, 4)) {
          await h.signal(checkInSignal, { sessionId: s, verifiedMinutes: 90, at: 0 });
          await h.query('state');
        }
        await h.signal(completeSignal, { assessmentPassed: true });
        await h.result();
      };
      const k = await startVoucherWorkflow(env.client, taskQueue, input);
      await claimTrainSettle(k, 'zlb');
      await save('sa-on-change-claim-directed-settled', k);

      // 9. Issued from a list (R2.5): the issuer wrote the state at issue to the read model, so the
      //    workflow skips its own first projection (`projectedAtIssue`); claimed, activated, trained, settled.
      const listed = await makePerson(db, testPii, { employmentDistrict: '330603' });
      const listInput = await buildVoucherInput(db, { type: 'directed', issuerDistrict: '330602', personRef: listed.personRef, obtainedAt: await env.currentTimeMs(), occupationCode: occ, awaitsClaim: true, projectedAtIssue: true });
      await writeStateAtIssue(db, [listInput]);
      const m = await startVoucherWorkflow(env.client, taskQueue, listInput);
      await m.query('state'); // its first workflow task
      await claimTrainSettle(m, 'wechat');
      await save('projected-at-issue-claim-directed-settled', m);
    });
  } finally {
    await env.teardown();
    await db.destroy();
    await dropDatabase(server, name);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
