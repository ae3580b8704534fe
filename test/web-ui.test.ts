/**
 * The Temporal Web UI as the operator's console (R3.1), in headless Chromium against the dev server
 * with its UI: an operator filters the workflow list by the custom search attribute VoucherStatus,
 * sees the activated voucher and not the issued one, opens it, and finds no personal data anywhere on
 * the page: payloads (and the static summary) are encrypted by the codec; IDs, search attributes and
 * summaries carry only the voucher number and codes. With the API's /codec endpoint configured as the
 * UI's codec server, the operator reads the decoded summary and input, still without personal data.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Page } from 'playwright-core';
import { startVoucherWorkflow } from '../activities/issuance-activities';
import { createApp } from '../api/app';
import { buildVoucherInput } from '../api/voucher-input';
import type { Db } from '../db/connection';
import { createLogger } from '../lib/logger';
import { freePort } from '../lib/postgres';
import { createVoucherWorker } from '../workers/voucher-worker';
import { voucherWorkflowId } from '../workflows/voucher/contract';
import { activateUpdate } from '../workflows/voucher/messages';
import { keyFor } from './helpers/api';
import { launchBrowser, type TestBrowser } from './helpers/browser';
import { devServerEnv, quietRuntime, testCodecKeys, testDb, testPii, uniqueTaskQueue } from './helpers/env';
import { makeCatalogueEntry, makePerson, type PersonFixture, uniqueOccupation } from './helpers/fixtures';

const ARTIFACTS = path.resolve(__dirname, '..', 'test-artifacts');
const DISTRICT = '330604';

let env: TestWorkflowEnvironment;
let db: Db;
let worker: Worker;
let running: Promise<void>;
let server: Server;
let base: string;
let uiBase: string;
let browser: TestBrowser | undefined;

/** The vouchers every test looks at: one activated, one left issued. */
let activatedNo: string;
let issuedNo: string;
let people: PersonFixture[];

beforeAll(async () => {
  quietRuntime();
  const uiPort = await freePort();
  env = await devServerEnv({ ui: true, uiPort });
  uiBase = `http://127.0.0.1:${uiPort}`;
  db = testDb();
  const taskQueue = uniqueTaskQueue('webui');
  worker = await createVoucherWorker({ connection: env.nativeConnection, db, taskQueue, codecKeys: testCodecKeys, workflowBundlePath: process.env.TEST_WORKFLOW_BUNDLE });
  running = worker.run();
  // The API as deployed: with the codec endpoint, admitting the Web UI's origin.
  const app = createApp({ db, client: env.client, pii: testPii, logger: createLogger('silent'), taskQueue, codecKeys: testCodecKeys, temporalUiOrigin: uiBase });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Vouchers started exactly as issuance starts them (summary, search attributes), one then activated.
  const occupationCode = uniqueOccupation();
  await makeCatalogueEntry(db, { occupationCode, level: '4', amountFen: 150_000 });
  const activatedPerson = await makePerson(db, testPii, { uiDistrict: DISTRICT });
  const issuedPerson = await makePerson(db, testPii, { uiDistrict: DISTRICT });
  people = [activatedPerson, issuedPerson];
  const start = async (person: PersonFixture, type: 'directed' | 'general') => {
    const input = await buildVoucherInput(db, { type, issuerDistrict: DISTRICT, personRef: person.personRef, occupationCode: type === 'directed' ? occupationCode : undefined, obtainedAt: Date.now() });
    await startVoucherWorkflow(env.client, taskQueue, input);
    return input.voucherNo;
  };
  activatedNo = await start(activatedPerson, 'directed');
  issuedNo = await start(issuedPerson, 'general');
  const activated = await env.client.workflow.getHandle(voucherWorkflowId(activatedNo)).executeUpdate(activateUpdate, { args: [{ channel: 'zlb' }] });
  if (activated.status !== 'activated') throw new Error(`activation failed: ${JSON.stringify(activated)}`);

  // Visibility is eventually consistent: wait until the server itself answers the operator's query.
  const visible = async (status: string, no: string) => {
    for await (const w of env.client.workflow.list({ query: `VoucherStatus="${status}"` })) if (w.workflowId === voucherWorkflowId(no)) return true;
    return undefined;
  };
  await eventually(async () => (await visible('activated', activatedNo)) && (await visible('issued', issuedNo)));
  mkdirSync(ARTIFACTS, { recursive: true });
}, 120_000);

afterEach(async () => {
  await browser?.close();
  browser = undefined;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  worker?.shutdown();
  await running;
  await env?.teardown();
  await db?.destroy();
});

async function eventually<T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every personal datum of the test people, none of which may reach the page. */
function personalData(): string[] {
  return people.flatMap((p) => [p.idNumber, p.name, p.phone, p.bankAccount]);
}

/** The HTML of the page and of every frame in it (the UI renders summaries and details in frames). */
async function everything(page: Page): Promise<string> {
  const parts = await Promise.all(page.frames().map((f) => f.content().catch(() => '')));
  return parts.join('\n');
}

async function expectNoPersonalData(page: Page): Promise<void> {
  const html = await everything(page);
  expect(html.length).toBeGreaterThan(1_000);
  for (const s of personalData()) expect(html).not.toContain(s);
}

const rowsOf = (page: Page) => page.locator('[data-testid="workflows-summary-configurable-table-row"]');
const listUrl = () => `${uiBase}/namespaces/default/workflows?query=${encodeURIComponent('VoucherStatus="activated"')}`;

/** Opens the list filtered by VoucherStatus="activated", reloading until the activated voucher shows (visibility lags). */
async function openActivatedList(page: Page): Promise<void> {
  await page.goto(listUrl(), { waitUntil: 'domcontentloaded' });
  const link = rowsOf(page).locator('a', { hasText: `Voucher:${activatedNo}` });
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      await link.waitFor({ timeout: 10_000 });
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await page.reload({ waitUntil: 'domcontentloaded' });
    }
  }
}

test('R3.1: operator finds activated vouchers in the Web UI by VoucherStatus and opens one; no personal data on the page', async () => {
  browser = await launchBrowser();
  const { page } = browser;
  page.setDefaultTimeout(20_000);

  await openActivatedList(page);
  // The filter is applied as a custom search attribute query, and only the activated voucher matches.
  expect(await page.getByText(/VoucherStatus\s*=\s*"activated"/).first().isVisible()).toBe(true);
  expect(await rowsOf(page).count()).toBe(1);
  await expect(rowsOf(page).first().textContent()).resolves.toContain(`Voucher:${activatedNo}`);
  expect(await page.content()).not.toContain(`Voucher:${issuedNo}`);
  await expectNoPersonalData(page);
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-list.png') });

  await rowsOf(page).locator('a', { hasText: `Voucher:${activatedNo}` }).click();
  const heading = page.locator('[data-testid="workflow-id-heading"]');
  await heading.waitFor();
  expect(await heading.textContent()).toContain(`Voucher:${activatedNo}`);
  expect(decodeURIComponent(page.url())).toContain(`/workflows/Voucher:${activatedNo}/`);
  // The input is shown, but as ciphertext (binary/encrypted payload) the browser cannot read.
  const input = page.locator('[data-testid="input-and-result"]');
  await input.getByText(/^\s*"?[A-Za-z0-9+/]{80,}/).first().waitFor();
  expect(await input.textContent()).not.toContain(activatedNo);
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-workflow.png') });
  await expectNoPersonalData(page);

  // Event history (update arguments, activity results) and the static summary: no personal data either;
  // the summary is encrypted too, so a browser without the codec shows none.
  await page.locator('[data-testid="history-tab"]').click();
  await page.waitForURL(/\/history/);
  await page.locator('[data-testid="event-summary-table"]').waitFor();
  await page.waitForTimeout(1_000);
  expect(await everything(page)).not.toContain(`${activatedNo} · directed · ${DISTRICT}`);
  await expectNoPersonalData(page);
  await page.locator('[data-testid="user-metadata-tab"]').click();
  await page.waitForURL(/\/user-metadata/);
  await page.locator('[data-testid="user-metadata"]').waitFor();
  await page.waitForTimeout(1_000);
  expect(await page.locator('#user-metadata-summary').count()).toBe(0);
  expect(await everything(page)).not.toContain(`${activatedNo} · directed · ${DISTRICT}`);
  await expectNoPersonalData(page);
});

test('R3.1: with the API /codec endpoint as its codec server the Web UI shows the decoded summary and input, still no personal data', async () => {
  browser = await launchBrowser();
  const { page } = browser;
  page.setDefaultTimeout(20_000);
  const operator = await keyFor(db, 'operator');
  // Stands in for the UI passing the operator's access token to the codec server; records the answers.
  const decodes: string[] = [];
  await page.route(`${base}/codec/**`, async (route) => {
    const response = await route.fetch({ headers: { ...route.request().headers(), authorization: `Bearer ${operator}` } });
    decodes.push(`${route.request().method()} ${new URL(route.request().url()).pathname} ${response.status()}`);
    await route.fulfill({ response });
  });

  await openActivatedList(page);
  // The operator points this browser at the API's codec endpoint (Codec Server settings of the UI).
  await page.locator('[data-testid="data-encoder-status"]').click();
  const dialog = page.locator('dialog', { has: page.locator('[data-testid="data-encoder-title"]') });
  await dialog.locator('label', { hasText: 'Use my browser setting' }).click();
  await dialog.locator('[data-testid="data-encoder-endpoint-input"]').fill(`${base}/codec`);
  await dialog.locator('[data-testid="confirm-modal-button"]').click();
  await dialog.waitFor({ state: 'hidden' });

  await rowsOf(page).locator('a', { hasText: `Voucher:${activatedNo}` }).click();
  await page.locator('[data-testid="workflow-id-heading"]').waitFor();
  // The input is decoded: voucher number, type, district and the pseudonymous person_ref, nothing more personal.
  const input = page.locator('[data-testid="input-and-result"]');
  await input.getByText(`"${activatedNo}"`).first().waitFor();
  const inputText = (await input.textContent()) ?? '';
  expect(inputText).toContain(`"personRef": "${people[0]!.personRef}"`);
  expect(inputText).toContain(`"issuerDistrict": "${DISTRICT}"`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-workflow-decoded.png') });
  await expectNoPersonalData(page);

  await page.locator('[data-testid="history-tab"]').click();
  await page.waitForURL(/\/history/);
  // The history shows the decoded summary in the start event's row.
  await page.locator('[data-testid="event-summary-table"]').getByText(`${activatedNo} · directed · ${DISTRICT}`).first().waitFor();
  await expectNoPersonalData(page);

  await page.locator('[data-testid="user-metadata-tab"]').click();
  // The UI renders the summary in its own frame (/render).
  await page.frameLocator('#user-metadata-summary').getByText(`${activatedNo} · directed · ${DISTRICT}`).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-summary-decoded.png') });
  await expectNoPersonalData(page);

  expect(decodes).toContain('POST /codec/decode 200');
  expect(decodes.filter((d) => !d.endsWith(' 200'))).toEqual([]);
});
