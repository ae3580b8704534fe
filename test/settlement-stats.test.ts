/**
 * R5.1 statistics: trainees and certificates count toward the settling (paying) district; subsidies
 * by district, funding source, voucher type, occupation and month; priority groups; budgets used vs
 * left — as JSON, CSV, and the /stats page checked in headless Chromium (screenshot in test-artifacts/).
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type Express } from 'express';
import request from 'supertest';
import { createActivities, type SettleInput } from '../activities/voucher-activities';
import { statsPageRoutes } from '../api/routes/public';
import type { Db } from '../db/connection';
import { parseLocal } from '../policy/calendar';
import { bearer, keyFor, testApp } from './helpers/api';
import { launchBrowser } from './helpers/browser';
import { testDb, testPii } from './helpers/env';
import { makeCatalogueEntry, makePerson, uid, uniqueOccupation } from './helpers/fixtures';

const ZONE = 'Asia/Shanghai';
// A year no other test settles in, so the figures are exactly ours.
const YEAR = 2031;
let db: Db;
let app: Express;
let acts: ReturnType<typeof createActivities>;
const occA = uniqueOccupation();
const occB = uniqueOccupation();

let n = 0;
async function settled(o: { issuer: string; payer: string; type: 'general' | 'directed'; occ: string; amountFen: number; fund: string; at: string; groups?: string[]; certificate?: boolean }) {
  const person = await makePerson(db, testPii, { uiDistrict: o.payer });
  n += 1;
  const voucherNo = `SX${o.issuer}${YEAR}${String(900000 + n + Math.floor(Math.random() * 9000) * 10).slice(-6)}`;
  const completedAt = parseLocal(o.at, ZONE);
  const instId = `INST-STATS-${uid('')}`;
  let certificateNo: string | undefined;
  if (o.type === 'general') {
    certificateNo = uid('CERT');
    await db('certificates').insert({ certificate_no: certificateNo, person_ref: person.personRef, occupation_code: o.occ, level: '4', issued_on: o.at.slice(0, 10) });
  }
  // The read model row the voucher workflow would have projected.
  await db('vouchers').insert({
    voucher_no: voucherNo,
    revision: 9,
    type: o.type,
    status: 'settled',
    issuer_district: o.issuer,
    person_ref: person.personRef,
    occupation_code: o.occ,
    institution_id: instId,
    policy_version: 'SX-2022-11/v1',
    priority_groups: o.groups ?? [],
    obtained_at: new Date(completedAt - 30 * 86_400_000).toISOString(),
    issued_at: new Date(completedAt - 30 * 86_400_000).toISOString(), // NOT NULL since migration 007 (claims)
    activation_deadline: new Date(completedAt).toISOString(),
    snapshot: JSON.stringify({ voucherNo }),
  });
  const input: SettleInput = {
    voucherNo,
    type: o.type,
    issuerDistrict: o.issuer,
    personRef: person.personRef,
    classPlan: { classId: 'CLS-STATS', institutionId: instId, occupationCode: o.occ, level: '4', trainingKind: 'certificate', sessions: [] },
    attendedMinutes: 100,
    totalMinutes: 100,
    assessmentPassed: true,
    ...(certificateNo ? { certificateNo } : {}),
    completedAt,
    checkInRateThresholdPct: 60,
    policyVersion: 'SX-2022-11/v1',
    timeZone: ZONE,
  };
  const r = await acts.settleVoucher(input);
  expect(r.outcome).toBe('approved');
  return voucherNo;
}

beforeAll(async () => {
  db = testDb();
  app = testApp(db, {} as never, 'unused');
  acts = createActivities({ db });
  await makeCatalogueEntry(db, { occupationCode: occA, level: '4', amountFen: 150_000, fundingSource: 'skills_upgrading_account' });
  await makeCatalogueEntry(db, { occupationCode: occB, level: '4', amountFen: 80_050, fundingSource: 'employment_subsidy' });
  await db('budgets').insert({ district: '330624', funding_source: 'skills_upgrading_account', year: YEAR, total_fen: 1_000_000, reserved_fen: 0 });
  // Issued by 越城区 (330602) but settled by 新昌县 (330624): counted toward 330624 (R5.1).
  await settled({ issuer: '330602', payer: '330624', type: 'general', occ: occA, amountFen: 150_000, fund: 'skills_upgrading_account', at: `${YEAR}-03-10T10:00:00`, groups: ['unemployed', 'rural_migrant'] });
  await settled({ issuer: '330624', payer: '330624', type: 'general', occ: occA, amountFen: 150_000, fund: 'skills_upgrading_account', at: `${YEAR}-04-01T00:30:00`, groups: ['unemployed'] });
  // Directed: the issuing district (330603) pays the institution.
  await settled({ issuer: '330603', payer: '330624', type: 'directed', occ: occB, amountFen: 80_050, fund: 'employment_subsidy', at: `${YEAR}-03-31T23:30:00` });
});

afterAll(async () => {
  await db?.destroy();
});

describe('R5.1 statistics', () => {
  test('R5.1 R2.4: trainees and certificates count toward the settling district; subsidies by district, source, type, occupation and month; priority groups; budgets used vs left', async () => {
    const operator = await keyFor(db, 'operator');
    const res = await request(app).get('/v1/statistics').query({ from: `${YEAR}-01-01`, to: `${YEAR}-12-31` }).set(bearer(operator));
    expect(res.status).toBe(200);
    expect(res.body.trainees).toEqual([
      { district: '330603', trainees: 1, certificates: 0 },
      { district: '330624', trainees: 2, certificates: 2 },
    ]);
    expect(res.body.trainees.find((t: { district: string }) => t.district === '330602')).toBeUndefined();
    expect(res.body.subsidies).toEqual([
      { district: '330603', fundingSource: 'employment_subsidy', voucherType: 'directed', occupationCode: occB, month: `${YEAR}-03`, count: 1, amountFen: 80_050 },
      { district: '330624', fundingSource: 'skills_upgrading_account', voucherType: 'general', occupationCode: occA, month: `${YEAR}-03`, count: 1, amountFen: 150_000 },
      // 00:30 on 1 April in Shanghai is still 31 March in UTC: the month is the local one.
      { district: '330624', fundingSource: 'skills_upgrading_account', voucherType: 'general', occupationCode: occA, month: `${YEAR}-04`, count: 1, amountFen: 150_000 },
    ]);
    expect(res.body.priorityGroups).toEqual([
      { group: 'rural_migrant', count: 1 },
      { group: 'unemployed', count: 2 },
    ]);
    expect(res.body.budgets).toEqual([{ district: '330624', fundingSource: 'skills_upgrading_account', year: YEAR, totalFen: 1_000_000, usedFen: 300_000, leftFen: 700_000 }]);
    // Every amount is an integer number of fen.
    for (const s of res.body.subsidies) expect(Number.isInteger(s.amountFen)).toBe(true);
  });

  test('R5.1: a district sees its own figures only; CSV carries the same numbers; bad ranges are 400; holders 403', async () => {
    const hr = await keyFor(db, 'hr', { district: '330602' });
    const mine = await request(app).get('/v1/statistics').query({ from: `${YEAR}-01-01`, to: `${YEAR}-12-31` }).set(bearer(hr));
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ district: '330602', trainees: [], subsidies: [], budgets: [] });
    const fin = await keyFor(db, 'finance', { district: '330624' });
    const csv = await request(app).get('/v1/statistics').query({ from: `${YEAR}-03-01`, to: `${YEAR}-03-31`, format: 'csv' }).set(bearer(fin));
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const rows = csv.text.trim().split('\r\n');
    expect(rows[0]).toBe('section,district,funding_source,voucher_type,occupation,month,group,year,count,amount_fen,total_fen,reserved_fen,left_fen');
    expect(rows).toContain('trainees,330624,,,,,,,1,,,,');
    expect(rows).toContain('certificates,330624,,,,,,,1,,,,');
    expect(rows).toContain(`subsidies,330624,skills_upgrading_account,general,${occA},${YEAR}-03,,,1,150000,,,`);
    expect(rows).toContain(`budgets,330624,skills_upgrading_account,,,,,${YEAR},,,1000000,300000,700000`);
    expect(rows.some((r) => r.startsWith('subsidies,330603'))).toBe(false);
    expect((await request(app).get('/v1/statistics').query({ from: `${YEAR}-12-31`, to: `${YEAR}-01-01` }).set(bearer(fin))).status).toBe(400);
    expect((await request(app).get('/v1/statistics').query({ from: 'yesterday', to: `${YEAR}-01-01` }).set(bearer(fin))).status).toBe(400);
    const holder = await keyFor(db, 'holder', { personRef: 'P' + '0'.repeat(40) });
    expect((await request(app).get('/v1/statistics').query({ from: `${YEAR}-01-01`, to: `${YEAR}-12-31` }).set(bearer(holder))).status).toBe(403);
  });

  test('R5.1: the /stats page loads the figures with the key entered and draws them as inline SVG in headless Chromium (no external requests)', async () => {
    const outer = express();
    outer.use(statsPageRoutes());
    outer.use(app);
    const server = outer.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const operator = await keyFor(db, 'operator');
    const browser = await launchBrowser({ width: 1280, height: 1400 });
    const external: string[] = [];
    try {
      const { page } = browser;
      page.on('request', (r) => {
        if (!r.url().startsWith(base)) external.push(r.url());
      });
      const resp = await page.goto(`${base}/stats`);
      expect(resp?.status()).toBe(200);
      await page.fill('#key', operator);
      await page.fill('#from', `${YEAR}-01-01`);
      await page.fill('#to', `${YEAR}-12-31`);
      await page.click('#load');
      await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
      expect(await page.locator('#trainees tbody tr').count()).toBe(2);
      expect(await page.locator('#trainees tbody').innerText()).toContain('330624');
      expect(await page.locator('#chart-district rect.bar').count()).toBe(2);
      expect(await page.locator('#chart-month svg').textContent()).toContain('2300.50'); // 1500.00 + 800.50 in March
      expect(await page.locator('#chart-groups rect.bar').count()).toBe(2);
      expect(await page.locator('#chart-budgets rect.used').count()).toBe(1);
      expect(await page.locator('#chart-budgets svg').textContent()).toContain('3000.00 / 10000.00');
      mkdirSync(path.resolve(__dirname, '..', 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: path.resolve(__dirname, '..', 'test-artifacts', 'stats.png'), fullPage: true });
      // A wrong key shows the problem, not figures.
      await page.fill('#key', 'vk_nobody_x');
      await page.click('#load');
      await page.waitForSelector('#status.error');
      expect(await page.locator('#status').innerText()).toContain('UNAUTHENTICATED');
    } finally {
      await browser.close();
      server.close();
    }
    expect(external).toEqual([]);
  });
});
