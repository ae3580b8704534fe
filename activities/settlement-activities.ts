/**
 * Activities of the settlement area (R3.12, R3.13): budget releases, settlement batches and their
 * files. Every writing activity is idempotent: batches are keyed by (district, funding source, date),
 * lines by (batch, disbursement), files by (batch, format, variant).
 */
import type { Knex } from 'knex';
import { policyInForceFromDb } from '../api/voucher-input';
import { loadConfig } from '../lib/config';
import { maskTail, Pii } from '../lib/pii';
import { localDate } from '../policy/calendar';
import type { ActivityDeps } from './voucher-activities';
import { renderCsv, renderXlsx, sha256, type BatchHeader, type BatchLine } from './settlement-files';

/** The settlement area needs the personal-data keys (names and accounts of the table). */
export type SettlementDeps = ActivityDeps & { pii?: Pii };

export const FILE_FORMATS = ['csv', 'xlsx'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];
export type FileVariant = 'masked' | 'full';

export interface BatchFileInfo {
  format: FileFormat;
  variant: FileVariant;
  sha256: string;
  size: number;
}

/** B-<district>-<fundingSource>-<YYYYMMDD> */
export const batchNumber = (district: string, fundingSource: string, date: string) => `B-${district}-${fundingSource}-${date.replace(/-/g, '')}`;

/**
 * R3.12: releases waiting rows of one budget in order (created_at, id) while the budget suffices.
 * Runs inside the caller's transaction, with the budget row locked.
 */
export async function releaseWaiting(trx: Knex.Transaction, b: { district: string; fundingSource: string; year: number }): Promise<string[]> {
  const budget = await trx('budgets').where({ district: b.district, funding_source: b.fundingSource, year: b.year }).forUpdate().first();
  if (!budget) return [];
  let left = BigInt(budget.total_fen) - BigInt(budget.reserved_fen);
  // Rows clawed back (R4.5) are never paid, so they are never released either.
  const waiting = await trx('disbursements as d')
    .leftJoin('clawbacks as c', 'c.disbursement_id', 'd.id')
    .where({ 'd.payer_district': b.district, 'd.funding_source': b.fundingSource, 'd.budget_year': b.year, 'd.status': 'waiting_budget' })
    .whereNull('c.id')
    .select('d.voucher_no', 'd.amount_fen')
    .orderBy([{ column: 'd.created_at' }, { column: 'd.id' }])
    .forUpdate('d');
  const released: string[] = [];
  let sum = 0n;
  for (const d of waiting) {
    const amount = BigInt(d.amount_fen);
    if (amount > left) break; // strictly in order: a later, smaller row never jumps the queue
    left -= amount;
    sum += amount;
    released.push(d.voucher_no);
  }
  if (released.length > 0) {
    await trx('budgets')
      .where({ district: b.district, funding_source: b.fundingSource, year: b.year })
      .update({ reserved_fen: trx.raw('reserved_fen + ?', [sum.toString()]), updated_at: trx.fn.now() });
    await trx('disbursements').whereIn('voucher_no', released).update({ status: 'approved', reserved_at: trx.fn.now() });
  }
  return released;
}

/** Renders and stores (encrypted) the four files of a batch; returns what is stored. */
export async function renderBatchFiles(db: Knex, pii: Pii, batchId: string): Promise<BatchFileInfo[]> {
  const existing = await db('batch_files').where({ batch_id: batchId }).select('format', 'variant', 'sha256', 'size');
  if (existing.length === 4) return existing.map(toInfo).sort(byKey);
  const batch = await db('settlement_batches').where({ id: batchId }).first();
  if (!batch) throw new Error(`no batch ${batchId}`);
  const header: BatchHeader = {
    id: batch.id,
    district: batch.district,
    fundingSource: batch.funding_source,
    paymentRoute: batch.payment_route,
    date: dateString(batch.batch_date),
  };
  const rows = await db('batch_lines').where({ batch_id: batchId }).orderBy('line_no');
  const lines = (variant: FileVariant): BatchLine[] =>
    rows.map((r) => {
      const account = r.account_enc ? pii.decrypt(r.account_enc) : '';
      return {
        lineNo: r.line_no,
        payeeType: r.payee_type,
        payeeId: r.payee_id_masked,
        name: pii.decrypt(r.payee_name_enc),
        account: variant === 'full' ? account : maskTail(account),
        amountFen: r.amount_fen,
        voucherNo: r.voucher_no,
      };
    });
  const out: BatchFileInfo[] = [];
  for (const variant of ['masked', 'full'] as const) {
    const l = lines(variant);
    for (const format of FILE_FORMATS) {
      const buf = format === 'csv' ? renderCsv(header, l) : await renderXlsx(header, l);
      const info = { format, variant, sha256: sha256(buf), size: buf.length };
      await db('batch_files')
        .insert({ batch_id: batchId, format, variant, content_enc: Buffer.from(pii.encrypt(buf.toString('base64')), 'utf8'), sha256: info.sha256, size: info.size })
        .onConflict(['batch_id', 'format', 'variant'])
        .ignore();
      out.push(info);
    }
  }
  return (await db('batch_files').where({ batch_id: batchId }).select('format', 'variant', 'sha256', 'size')).map(toInfo).sort(byKey);
}

/** The stored file, decrypted, with its hash checked. */
export async function readBatchFile(db: Knex, pii: Pii, batchId: string, format: FileFormat, variant: FileVariant): Promise<Buffer | null> {
  const f = await db('batch_files').where({ batch_id: batchId, format, variant }).first();
  if (!f) return null;
  const buf = Buffer.from(pii.decrypt(Buffer.from(f.content_enc).toString('utf8')), 'base64');
  if (sha256(buf) !== f.sha256) throw new Error(`batch file ${batchId}.${format} does not match its SHA-256`);
  return buf;
}

const toInfo = (r: { format: FileFormat; variant: FileVariant; sha256: string; size: number }): BatchFileInfo => ({
  format: r.format,
  variant: r.variant,
  sha256: r.sha256,
  size: Number(r.size),
});
const byKey = (a: BatchFileInfo, b: BatchFileInfo) => `${a.variant}.${a.format}`.localeCompare(`${b.variant}.${b.format}`);

function dateString(d: Date | string): string {
  if (typeof d === 'string') return d.slice(0, 10);
  // `date` columns come back as local-midnight Dates from node-postgres.
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export interface PrepareResult {
  date: string;
  /** Every batch of the date (new and found), in order. */
  batchIds: string[];
  created: string[];
}

/**
 * R3.13: gathers approved, unbatched disbursements per paying district and funding source into one
 * batch per (district, source, date). A batch that exists for the date is found, never redone; rows
 * approved after it wait for the next day's batch. Payees without a registered account wait too.
 */
export async function prepareBatches(db: Knex, pii: Pii, date: string): Promise<PrepareResult> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', ['settlement-batches']);
    const groups = await trx('disbursements as d')
      .leftJoin('clawbacks as c', 'c.disbursement_id', 'd.id')
      .where('d.status', 'approved')
      .whereNull('c.id')
      .distinct('d.payer_district', 'd.funding_source', 'd.payment_route')
      .orderBy(['d.payer_district', 'd.funding_source']);
    const created: string[] = [];
    for (const g of groups) {
      const id = batchNumber(g.payer_district, g.funding_source, date);
      if (await trx('settlement_batches').where({ id }).first()) continue;
      const ds = await trx('disbursements as d')
        .leftJoin('clawbacks as c', 'c.disbursement_id', 'd.id')
        .leftJoin('persons as p', function join() {
          this.on('p.person_ref', '=', 'd.payee_ref').andOnVal('d.payee_type', '=', 'person');
        })
        .leftJoin('institutions as i', function join() {
          this.on('i.id', '=', 'd.payee_ref').andOnVal('d.payee_type', '=', 'institution');
        })
        .where({ 'd.status': 'approved', 'd.payer_district': g.payer_district, 'd.funding_source': g.funding_source })
        .whereNull('c.id')
        .select('d.id', 'd.voucher_no', 'd.payee_type', 'd.payee_ref', 'd.amount_fen', 'p.id_number_last4', 'p.name_enc', 'p.bank_account_enc as p_account', 'i.name as i_name', 'i.bank_account_enc as i_account')
        .orderBy([{ column: 'd.created_at' }, { column: 'd.id' }])
        .forUpdate('d');
      const payable = ds.filter((d) => (d.payee_type === 'person' ? d.p_account : d.i_account));
      if (payable.length === 0) continue;
      const total = payable.reduce((s, d) => s + BigInt(d.amount_fen), 0n);
      await trx('settlement_batches').insert({
        id,
        district: g.payer_district,
        funding_source: g.funding_source,
        payment_route: g.payment_route,
        batch_date: date,
        status: 'prepared',
        total_fen: total.toString(),
        line_count: payable.length,
      });
      let lineNo = 0;
      for (const d of payable) {
        lineNo += 1;
        await trx('batch_lines').insert({
          batch_id: id,
          line_no: lineNo,
          disbursement_id: d.id,
          voucher_no: d.voucher_no,
          payee_type: d.payee_type,
          payee_ref: d.payee_ref,
          payee_id_masked: d.payee_type === 'person' ? `**************${d.id_number_last4}` : d.payee_ref,
          payee_name_enc: d.payee_type === 'person' ? d.name_enc : pii.encrypt(d.i_name),
          account_enc: d.payee_type === 'person' ? d.p_account : d.i_account,
          amount_fen: d.amount_fen,
        });
      }
      await trx('disbursements').whereIn('id', payable.map((d) => d.id)).update({ status: 'batched', batch_id: id });
      created.push(id);
    }
    const all = await trx('settlement_batches').where({ batch_date: date }).orderBy('id').pluck('id');
    return { date, batchIds: all, created };
  });
}

function piiFrom(deps: SettlementDeps): Pii {
  if (deps.pii) return deps.pii;
  const c = loadConfig();
  return new Pii({ personRefKey: c.personRefKey, piiKey: c.piiKey });
}

export function createSettlementActivities(deps: ActivityDeps) {
  const { db } = deps;
  const clock = deps.now ?? Date.now;
  let pii: Pii | undefined;
  const keys = () => (pii ??= piiFrom(deps as SettlementDeps));
  return {
    /** The batch date: the given one, else the local date (policy time zone) of `at`. */
    async settlementBatchDate(i: { at: number }): Promise<string> {
      const policy = await policyInForceFromDb(db, i.at ?? clock());
      return localDate(i.at, policy.timeZone);
    },
    async settlementPrepareBatches(i: { date: string }): Promise<PrepareResult> {
      return prepareBatches(db, keys(), i.date);
    },
    async settlementRenderBatchFiles(i: { batchId: string }): Promise<BatchFileInfo[]> {
      return renderBatchFiles(db, keys(), i.batchId);
    },
  };
}
