/**
 * Activities of the settlement area (R3.12, R3.13): budget releases, settlement batches and their
 * files. Every writing activity is idempotent: batches are keyed by (district, funding source, date),
 * lines by (batch, disbursement), files by (batch, format, variant).
 */
import { Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { policyInForceFromDb } from '../api/voucher-input';
import { loadConfig } from '../lib/config';
import { isEncryptedBytes, maskTail, Pii } from '../lib/pii';
import { localDate } from '../policy/calendar';
import type { ActivityDeps } from './voucher-activities';
import { BatchTableWriter, sha256, type BatchHeader, type BatchLine } from './settlement-files';

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

/** Lines of a batch are read in keyset pages of this size while its files are written. */
const RENDER_PAGE = 10_000;

/**
 * Renders and stores (encrypted) the four files of a batch; returns what is stored. The lines are read
 * in keyset pages by line number; each name and account is decrypted once (a payee met again in the
 * batch is decrypted from a small cache) and written to both variants, CSV and XLSX in one pass.
 */
export async function renderBatchFiles(db: Knex, pii: Pii, batchId: string, onPage?: (linesDone: number) => void): Promise<BatchFileInfo[]> {
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
  const writers = { masked: new BatchTableWriter(header), full: new BatchTableWriter(header) };
  const cache = new Map<string, string>();
  const plain = (token: string | null): string => {
    if (!token) return '';
    let v = cache.get(token);
    if (v === undefined) {
      v = pii.decrypt(token);
      if (cache.size < 10_000) cache.set(token, v);
    }
    return v;
  };
  let last = 0;
  let done = 0;
  for (;;) {
    const page = await db('batch_lines')
      .where({ batch_id: batchId })
      .andWhere('line_no', '>', last)
      .orderBy('line_no')
      .limit(RENDER_PAGE)
      .select('line_no', 'payee_type', 'payee_id_masked', 'payee_name_enc', 'account_enc', 'amount_fen', 'voucher_no');
    if (page.length === 0) break;
    for (const r of page) {
      const account = plain(r.account_enc);
      const line: BatchLine = {
        lineNo: r.line_no,
        payeeType: r.payee_type,
        payeeId: r.payee_id_masked,
        name: plain(r.payee_name_enc),
        account,
        amountFen: r.amount_fen,
        voucherNo: r.voucher_no,
      };
      writers.full.add(line);
      writers.masked.add({ ...line, account: maskTail(account) });
    }
    last = page[page.length - 1].line_no;
    done += page.length;
    onPage?.(done);
    if (page.length < RENDER_PAGE) break;
  }
  if (done !== Number(batch.line_count)) throw new Error(`batch ${batchId} has ${done} lines, its header says ${batch.line_count}`);
  for (const variant of ['masked', 'full'] as const) {
    const files = writers[variant].finish();
    for (const format of FILE_FORMATS) {
      const buf = files[format];
      await db('batch_files')
        .insert({ batch_id: batchId, format, variant, content_enc: pii.encryptBytes(buf), sha256: sha256(buf), size: buf.length })
        .onConflict(['batch_id', 'format', 'variant'])
        .ignore();
    }
  }
  return (await db('batch_files').where({ batch_id: batchId }).select('format', 'variant', 'sha256', 'size')).map(toInfo).sort(byKey);
}

/** The stored file, decrypted, with its hash checked. */
export async function readBatchFile(db: Knex, pii: Pii, batchId: string, format: FileFormat, variant: FileVariant): Promise<Buffer | null> {
  const f = await db('batch_files').where({ batch_id: batchId, format, variant }).first();
  if (!f) return null;
  const stored = Buffer.from(f.content_enc);
  // Files are stored in Pii's binary form; rows written before it hold a `v1:` text token of base64.
  const buf = isEncryptedBytes(stored) ? pii.decryptBytes(stored) : Buffer.from(pii.decrypt(stored.toString('utf8')), 'base64');
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
  /** Every batch of the date (new and found; of the district, for a district's run), in order. */
  batchIds: string[];
  created: string[];
}

/**
 * R3.13: gathers approved, unbatched disbursements per paying district and funding source into one
 * batch per (district, source, date): one line per disbursement with the payee (person or institution),
 * name and account as registered now, amount and voucher number, in approval order (created_at, id).
 * A batch that exists for the date is found, never redone; rows approved after it wait for the next
 * day's batch. Payees without a registered account wait too. Clawed-back rows are never batched.
 * With `district`, only that paying district's rows are gathered and only its batches returned (a
 * district finance bureau's run); the other districts' rows stay for their own or the city-wide run.
 *
 * One transaction under an advisory lock; per batch a fixed number of statements whatever its size:
 * the lines are inserted by one INSERT … SELECT (rows locked FOR UPDATE), the ledger rows marked by
 * one UPDATE … FROM, and the header's total and count taken from the lines themselves, so the total of
 * a batch is the sum of its lines by construction. A crash anywhere rolls the whole run back.
 */
export async function prepareBatches(
  db: Knex,
  pii: Pii,
  date: string,
  onBatch?: (batchId: string) => void,
  district?: string,
): Promise<PrepareResult> {
  /** Narrows a query to `district` on `column` for a district's run; the city-wide run reads all. */
  const inDistrict = (column: string) => (q: Knex.QueryBuilder) => {
    if (district) q.where(column, district);
  };
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', ['settlement-batches']);
    const groups = await trx('disbursements as d')
      .leftJoin('clawbacks as c', 'c.disbursement_id', 'd.id')
      .where('d.status', 'approved')
      .whereNull('c.id')
      .modify(inDistrict('d.payer_district'))
      .distinct('d.payer_district', 'd.funding_source', 'd.payment_route')
      .orderBy(['d.payer_district', 'd.funding_source']);
    const created: string[] = [];
    for (const g of groups) {
      const id = batchNumber(g.payer_district, g.funding_source, date);
      if (await trx('settlement_batches').where({ id }).first()) continue;
      // Institution names are public, but batch lines hold every payee name as ciphertext, uniformly:
      // one ciphertext per institution of this group.
      const insts: { id: string; name: string }[] = await trx('institutions as i')
        .whereIn('i.id', trx('disbursements').where({ status: 'approved', payer_district: g.payer_district, funding_source: g.funding_source, payee_type: 'institution' }).distinct('payee_ref'))
        .select('i.id', 'i.name');
      const names = Object.fromEntries(insts.map((i) => [i.id, pii.encrypt(i.name)]));
      await trx('settlement_batches').insert({
        id,
        district: g.payer_district,
        funding_source: g.funding_source,
        payment_route: g.payment_route,
        batch_date: date,
        status: 'prepared',
        total_fen: 0,
        line_count: 0,
      });
      await trx.raw(
        `with locked as (
           select d.id, d.voucher_no, d.payee_type, d.payee_ref, d.amount_fen, d.created_at
             from disbursements d
            where d.status = 'approved' and d.payer_district = ? and d.funding_source = ?
              and not exists (select 1 from clawbacks c where c.disbursement_id = d.id)
              for update of d
         )
         insert into batch_lines (batch_id, line_no, disbursement_id, voucher_no, payee_type, payee_ref, payee_id_masked, payee_name_enc, account_enc, amount_fen)
         select ?, row_number() over (order by l.created_at, l.id), l.id, l.voucher_no, l.payee_type, l.payee_ref,
                case when l.payee_type = 'person' then '**************' || p.id_number_last4 else l.payee_ref end,
                case when l.payee_type = 'person' then p.name_enc else n.value end,
                case when l.payee_type = 'person' then p.bank_account_enc else i.bank_account_enc end,
                l.amount_fen
           from locked l
           left join persons p on l.payee_type = 'person' and p.person_ref = l.payee_ref
           left join institutions i on l.payee_type = 'institution' and i.id = l.payee_ref
           left join jsonb_each_text(?::jsonb) n on l.payee_type = 'institution' and n.key = l.payee_ref
          where case when l.payee_type = 'person' then p.bank_account_enc else i.bank_account_enc end is not null`,
        [g.payer_district, g.funding_source, id, JSON.stringify(names)],
      );
      const sums = await trx('batch_lines').where({ batch_id: id }).first(trx.raw('count(*)::int as n'), trx.raw('coalesce(sum(amount_fen), 0)::bigint as total'));
      if (Number(sums.n) === 0) {
        await trx('settlement_batches').where({ id }).del();
        continue;
      }
      await trx('settlement_batches').where({ id }).update({ total_fen: sums.total, line_count: sums.n });
      await trx.raw(
        `update disbursements d set status = 'batched', batch_id = l.batch_id
           from batch_lines l where l.batch_id = ? and l.disbursement_id = d.id`,
        [id],
      );
      created.push(id);
      onBatch?.(id);
    }
    const all = await trx('settlement_batches').where({ batch_date: date }).modify(inDistrict('district')).orderBy('id').pluck('id');
    return { date, batchIds: all, created };
  });
}

/**
 * Inside an activity, heartbeats while `run` works (each batch or page, and every few seconds while a
 * statement runs), so the workflow's heartbeat timeout notices a dead worker long before the
 * start-to-close timeout would; outside an activity (bench, tests) it just runs.
 */
async function withHeartbeats<T>(run: (beat: (progress?: unknown) => void) => Promise<T>): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    ctx = undefined;
  }
  if (!ctx) return run(() => {});
  const c = ctx;
  const timer = setInterval(() => c.heartbeat(), 3_000);
  try {
    return await run((progress) => c.heartbeat(progress));
  } finally {
    clearInterval(timer);
  }
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
    async settlementPrepareBatches(i: { date: string; district?: string }): Promise<PrepareResult> {
      return withHeartbeats((beat) => prepareBatches(db, keys(), i.date, beat, i.district));
    },
    async settlementRenderBatchFiles(i: { batchId: string }): Promise<BatchFileInfo[]> {
      return withHeartbeats((beat) => renderBatchFiles(db, keys(), i.batchId, beat));
    },
  };
}
