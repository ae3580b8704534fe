/**
 * Figure 7 of `npm run bench`: the project's settlement batch (R3.13) — preparation of the batches and
 * rendering of their CSV and XLSX tables, both variants, stored encrypted with their SHA-256 — over N
 * approved disbursement rows, as a ratio to a plain `COPY (select …) TO STDOUT` of the same rows.
 *
 * Rows: half paid to persons (one row each: a distinct name and account to decrypt per line), half to
 * 300 institutions, every payee with a registered account, spread over 6 districts × 3 funding sources
 * (6 batches: district and source go together here). Measured:
 * - COPY of the rows to a file (the baseline);
 * - a reference exporter (not project code): pg keyset pages → csv-stringify + exceljs's streaming
 *   writer, kept from before the batch existed, for comparison;
 * - the real activities called directly (settlementPrepareBatches, then settlementRenderBatchFiles per
 *   batch), each timed;
 * - the same through settlementBatchWorkflow on a real worker (the batch state reset in between).
 */
import { createWriteStream, statSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { stringify } from 'csv-stringify';
import ExcelJS from 'exceljs';
import { Client as PgClient } from 'pg';
import { createSettlementActivities } from '../activities/settlement-activities';
import type { Db } from '../db/connection';
import type { CodecKeys } from '../lib/codec';
import type { Pii } from '../lib/pii';
import { createVoucherWorker } from '../workers/voucher-worker';
import type { SettlementBatchResult } from '../workflows/settlement/contract';
import { copyOut, round } from './lib';

export interface SettlementBenchContext {
  db: Db;
  databaseUrl: string;
  tmp: string;
  pii: Pii;
  rows: number;
  connection: NativeConnection;
  client: Client;
  codecKeys: CodecKeys;
  workflowBundlePath: string;
  workerOptions: Partial<WorkerOptions>;
  taskQueue: string;
  log: (m: string) => void;
}

const INSTITUTIONS = 300;

export async function measureSettlement(x: SettlementBenchContext) {
  const { db, pii, rows, log } = x;
  const persons = Math.floor(rows / 2);
  log(`settlement: seeding ${rows} approved disbursement rows (${persons} to as many persons, the rest to ${INSTITUTIONS} institutions), every payee with an account`);
  await db('institutions').insert(
    Array.from({ length: INSTITUTIONS }, (_, k) => ({ id: `BINST${k}`, name: `绍兴职业培训学校 ${k}`, district: '330602', status: 'approved', bank_account_enc: pii.encrypt(`62220000${String(k).padStart(8, '0')}`) })),
  );
  for (let k = 1; k <= persons; k += 2000) {
    const chunk = Array.from({ length: Math.min(2000, persons - k + 1) }, (_, j) => {
      const n = k + j;
      const last4 = String(n % 10_000).padStart(4, '0');
      return { person_ref: `BP${n}`, id_number_enc: pii.encrypt(`33060219900101${last4}`), id_number_last4: last4, name_enc: pii.encrypt(`测试学员${n}`), bank_account_enc: pii.encrypt(`6217${String(n).padStart(12, '0')}`), ui_district: '330602' };
    });
    await db('persons').insert(chunk);
  }
  await db.raw(
    `insert into disbursements (voucher_no, payer_district, payee_type, payee_ref, amount_fen, funding_source, payment_route, status)
     select 'BENCH' || lpad(g::text, 9, '0'), (array['330602','330603','330604','330681','330683','330624'])[1 + g % 6],
            case when g % 2 = 0 then 'person' else 'institution' end,
            case when g % 2 = 0 then 'BP' || (g / 2) else 'BINST' || (g % ${INSTITUTIONS}) end,
            150000 + (g % 7) * 10000,
            (array['skills_upgrading_account','ui_employment_promotion','employment_subsidy'])[1 + g % 3],
            case when g % 3 = 2 then 'treasury_centralised_payment' else 'agency_expenditure_account' end, 'approved'
     from generate_series(1, ?) g`,
    [rows],
  );
  await db.raw('analyze');
  const expectedTotal = Number((await db('disbursements').where('voucher_no', 'like', 'BENCH%').sum<{ s: string }[]>({ s: 'amount_fen' }))[0]!.s);

  // ---- baseline: COPY of the same rows ------------------------------------------------------------
  const select = `select voucher_no, payer_district, payee_type, payee_ref, amount_fen, funding_source, payment_route, created_at
                  from disbursements where status = 'approved' and voucher_no like 'BENCH%' order by payer_district, voucher_no`;
  const pg = new PgClient({ connectionString: x.databaseUrl });
  await pg.connect();
  const copyFile = path.join(x.tmp, 'copy.csv');
  const out = createWriteStream(copyFile);
  const t0 = performance.now();
  const { bytes } = await copyOut(pg, `copy (${select}) to stdout with (format csv, header)`, (c) => out.write(c));
  await new Promise<void>((r) => out.end(() => r()));
  const copyMs = performance.now() - t0;
  await pg.end();

  // ---- reference exporter (not project code) ------------------------------------------------------
  const t1 = performance.now();
  const csvFile = path.join(x.tmp, 'reference.csv');
  const xlsxFile = path.join(x.tmp, 'reference.xlsx');
  const cols = ['voucher_no', 'payer_district', 'payee_type', 'payee_ref', 'amount_fen', 'funding_source', 'payment_route'];
  const csv = stringify({ header: true, columns: cols });
  const csvOut = createWriteStream(csvFile);
  csv.pipe(csvOut);
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: xlsxFile, useStyles: false, useSharedStrings: false });
  const sheet = wb.addWorksheet('disbursements');
  sheet.columns = cols.map((k) => ({ header: k, key: k }));
  let last = '';
  let seen = 0;
  for (;;) {
    const page = await db('disbursements').select(cols).where('status', 'approved').andWhere('voucher_no', 'like', 'BENCH%').andWhere('voucher_no', '>', last).orderBy('voucher_no').limit(10_000);
    if (page.length === 0) break;
    for (const r of page) {
      csv.write(r);
      sheet.addRow(r).commit();
    }
    seen += page.length;
    last = page[page.length - 1].voucher_no;
  }
  csv.end();
  await new Promise<void>((r) => csvOut.on('finish', () => r()));
  await wb.commit();
  const refMs = performance.now() - t1;

  // ---- the project's batch: the activities, called directly ---------------------------------------
  const date = '2031-01-02';
  const acts = createSettlementActivities({ db, pii });
  log('settlement: real batch preparation + rendering (activities called directly)');
  const cpu0 = process.cpuUsage();
  const t2 = performance.now();
  const prepared = await acts.settlementPrepareBatches({ date });
  const prepareMs = performance.now() - t2;
  const sizes = { csv: 0, xlsx: 0 };
  for (const id of prepared.batchIds) {
    for (const f of await acts.settlementRenderBatchFiles({ batchId: id })) if (f.variant === 'full') sizes[f.format] += f.size;
  }
  const realMs = performance.now() - t2;
  const renderMs = realMs - prepareMs;
  const cpu = process.cpuUsage(cpu0);
  const check = async () => {
    const b = await db('settlement_batches').where({ batch_date: date }).first(db.raw('count(*)::int as n'));
    const l = await db('batch_lines').where('voucher_no', 'like', 'BENCH%').first(db.raw('count(*)::int as lines'), db.raw('coalesce(sum(amount_fen), 0)::bigint as total'));
    const files = Number((await db('batch_files').count<{ n: string }[]>({ n: '*' }))[0]!.n);
    if (l.lines !== rows || Number(l.total) !== expectedTotal || files !== 4 * b.n) throw new Error(`settlement bench: ${b.n} batches, ${l.lines} lines, total ${l.total}, ${files} files; expected ${rows} lines, total ${expectedTotal}`);
    return { batches: b.n as number, lines: l.lines as number };
  };
  const direct = await check();

  // ---- the same through the workflow on a real worker ----------------------------------------------
  await db('batch_files').del();
  await db('batch_lines').del();
  await db('settlement_batches').del();
  await db('disbursements').where('voucher_no', 'like', 'BENCH%').update({ status: 'approved', batch_id: null });
  await db.raw('vacuum analyze disbursements, batch_lines, batch_files, settlement_batches');
  const worker = await createVoucherWorker({ connection: x.connection, db, codecKeys: x.codecKeys, taskQueue: x.taskQueue, workflowBundlePath: x.workflowBundlePath, options: x.workerOptions, activityDeps: { pii } });
  const running = worker.run();
  log('settlement: the same through settlementBatchWorkflow on a real worker');
  const t3 = performance.now();
  const wf = (await x.client.workflow.execute('settlementBatchWorkflow', { workflowId: `SettlementBatch:${date}:bench-${Date.now()}`, taskQueue: x.taskQueue, args: [{ date }] })) as SettlementBatchResult;
  const workflowMs = performance.now() - t3;
  worker.shutdown();
  await running;
  await check();

  return {
    figure: 'settlement batch (R3.13): approved rows → batches, CSV + XLSX tables (masked and full), stored encrypted with SHA-256 ÷ plain COPY of the same rows',
    rows,
    payees: { persons, institutions: INSTITUTIONS },
    batches: direct.batches,
    copyBaseline: { seconds: round(copyMs / 1000, 3), bytes, rowsPerSecond: Math.round((rows * 1000) / copyMs) },
    real: {
      note: 'settlementPrepareBatches + settlementRenderBatchFiles per batch, called directly in this process',
      seconds: round(realMs / 1000, 3),
      prepareSeconds: round(prepareMs / 1000, 3),
      renderSeconds: round(renderMs / 1000, 3),
      nodeCpuSeconds: round((cpu.user + cpu.system) / 1e6, 3),
      csvBytes: sizes.csv,
      xlsxBytes: sizes.xlsx,
      ratioToCopy: round(realMs / copyMs, 2),
      ratioToReference: round(realMs / refMs, 2),
    },
    workflow: { note: 'settlementBatchWorkflow on a real worker (same activities, through Temporal)', seconds: round(workflowMs / 1000, 3), batches: wf.batchIds.length, ratioToCopy: round(workflowMs / copyMs, 2) },
    referenceExporter: {
      note: 'pg keyset pages of 10,000 → csv-stringify + exceljs streaming WorkbookWriter, in this process; NOT the project code (7 columns, no names or accounts)',
      rows: seen,
      seconds: round(refMs / 1000, 3),
      csvBytes: statSync(csvFile).size,
      xlsxBytes: statSync(xlsxFile).size,
      ratioToCopy: round(refMs / copyMs, 1),
    },
  };
}
