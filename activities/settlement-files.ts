/**
 * R3.13: the disbursement table of a settlement batch as CSV and XLSX. Pure and deterministic: the
 * same batch renders to the same bytes (fixed workbook dates, fixed ZIP entry times), so the SHA-256
 * stored with the batch can be checked again at any time. Amounts are integer fen, shown in yuan with
 * two decimals by integer arithmetic (no floating point anywhere).
 */
import { createHash } from 'node:crypto';
import ExcelJS from 'exceljs';
import { stringify } from 'csv-stringify/sync';

/** 123456 fen → "1234.56"; negative amounts keep their sign. */
export function fenToYuan(fen: number | bigint | string): string {
  const b = BigInt(fen);
  const neg = b < 0n;
  const a = neg ? -b : b;
  return `${neg ? '-' : ''}${(a / 100n).toString()}.${(a % 100n).toString().padStart(2, '0')}`;
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export interface BatchHeader {
  id: string;
  district: string;
  fundingSource: string;
  paymentRoute: string;
  /** YYYY-MM-DD (Asia/Shanghai). */
  date: string;
}

export interface BatchLine {
  lineNo: number;
  payeeType: 'person' | 'institution';
  /** Masked resident ID (last 4) or the institution ID. */
  payeeId: string;
  name: string;
  /** Masked or full account, as the variant requires. */
  account: string;
  amountFen: number | string;
  voucherNo: string;
}

export const TABLE_COLUMNS = ['line', 'payee_type', 'payee_id', 'name', 'account', 'amount_yuan', 'voucher_no'] as const;

function rows(h: BatchHeader, lines: BatchLine[]): string[][] {
  const total = lines.reduce((s, l) => s + BigInt(l.amountFen), 0n);
  return [
    ['district', h.district],
    ['batch_number', h.id],
    ['date', h.date],
    ['funding_source', h.fundingSource],
    ['payment_route', h.paymentRoute],
    [],
    [...TABLE_COLUMNS],
    ...lines.map((l) => [String(l.lineNo), l.payeeType, l.payeeId, l.name, l.account, fenToYuan(l.amountFen), l.voucherNo]),
    ['total', '', '', '', `${lines.length} lines`, fenToYuan(total), ''],
  ];
}

export function renderCsv(h: BatchHeader, lines: BatchLine[]): Buffer {
  return Buffer.from(stringify(rows(h, lines), { record_delimiter: '\r\n' }), 'utf8');
}

export async function renderXlsx(h: BatchHeader, lines: BatchLine[]): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const fixed = new Date(`${h.date}T00:00:00Z`);
  wb.creator = 'shaoxing-training-vouchers';
  wb.lastModifiedBy = 'shaoxing-training-vouchers';
  wb.created = fixed;
  wb.modified = fixed;
  wb.lastPrinted = fixed;
  const ws = wb.addWorksheet('disbursements');
  for (const r of rows(h, lines)) ws.addRow(r); // every cell a string: amounts stay exact
  ws.columns.forEach((c, i) => {
    c.width = [8, 12, 22, 24, 24, 16, 22][i] ?? 12;
  });
  const buf = Buffer.from(await wb.xlsx.writeBuffer());
  return fixZipTimes(buf);
}

/**
 * Sets every ZIP entry's DOS modification time/date to 1980-01-01 00:00 (local and central headers),
 * so the archive's bytes do not depend on when it was written.
 */
export function fixZipTimes(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  const eocd = out.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a ZIP archive');
  const entries = out.readUInt16LE(eocd + 10);
  let p = out.readUInt32LE(eocd + 16);
  const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01
  for (let n = 0; n < entries; n++) {
    if (out.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory');
    out.writeUInt16LE(0, p + 12);
    out.writeUInt16LE(DOS_DATE, p + 14);
    const local = out.readUInt32LE(p + 42);
    if (out.readUInt32LE(local) !== 0x04034b50) throw new Error('bad local header');
    out.writeUInt16LE(0, local + 10);
    out.writeUInt16LE(DOS_DATE, local + 12);
    p += 46 + out.readUInt16LE(p + 28) + out.readUInt16LE(p + 30) + out.readUInt16LE(p + 32);
  }
  return out;
}
