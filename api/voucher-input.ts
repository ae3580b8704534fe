/** Builds the workflow input of a new voucher: number, policy in force, captured whole. */
import type { Db } from '../db/connection';
import { localDate, localYear } from '../policy/calendar';
import { assertPolicy, type PolicyParams } from '../policy/policy';
import type { VoucherInput, VoucherType } from '../workflows/voucher/contract';

/** The policy version in force on `at` (Asia/Shanghai date), read from `policy_versions`. */
export async function policyInForceFromDb(db: Db, at: number): Promise<PolicyParams> {
  // The zone of the policy itself decides its dates; all versions so far share Asia/Shanghai.
  const rows = await db('policy_versions').select('params').orderBy('effective_from', 'desc');
  for (const r of rows) {
    const p = r.params as PolicyParams;
    assertPolicy(p);
    if (p.effectiveFrom <= localDate(at, p.timeZone)) return p;
  }
  throw new Error('no policy version in force');
}

/** Allocates the next voucher number of a district and year: SX + district + year + 6-digit sequence. */
export async function nextVoucherNo(db: Db, district: string, year: number): Promise<string> {
  const rows = await db.raw(
    `insert into voucher_counters (district, year, last) values (?, ?, 1)
     on conflict (district, year) do update set last = voucher_counters.last + 1
     returning last`,
    [district, year],
  );
  const last = Number(rows.rows[0].last);
  return `SX${district}${year}${String(last).padStart(6, '0')}`;
}

/**
 * Allocates `n` consecutive numbers of a district and year in one statement (bulk issuance: one
 * counter update per chunk instead of one per row; inside the caller's transaction, so an abort
 * wastes none).
 */
export async function nextVoucherNos(db: Db, district: string, year: number, n: number): Promise<string[]> {
  if (n <= 0) return [];
  const rows = await db.raw(
    `insert into voucher_counters (district, year, last) values (?, ?, ?)
     on conflict (district, year) do update set last = voucher_counters.last + excluded.last
     returning last`,
    [district, year, n],
  );
  const last = Number(rows.rows[0].last);
  return Array.from({ length: n }, (_, k) => `SX${district}${year}${String(last - n + 1 + k).padStart(6, '0')}`);
}

/**
 * `obtainedAt` is the issue time. With `awaitsClaim` (every voucher HR issues, R2.7) the holder obtains
 * the voucher later by claiming it; without it (direct starts in tests and benchmarks) the voucher
 * counts as obtained at issue. `voucherNo` and `policy`, when given, were allocated / read by the
 * caller (bulk issuance); so is the read model's row at issue with `projectedAtIssue`.
 */
export async function buildVoucherInput(
  db: Db,
  i: { type: VoucherType; issuerDistrict: string; personRef: string; occupationCode?: string; priorityGroups?: string[]; obtainedAt: number; awaitsClaim?: boolean; voucherNo?: string; policy?: PolicyParams; projectedAtIssue?: boolean },
): Promise<VoucherInput> {
  const policy = i.policy ?? (await policyInForceFromDb(db, i.obtainedAt));
  const voucherNo = i.voucherNo ?? (await nextVoucherNo(db, i.issuerDistrict, localYear(i.obtainedAt, policy.timeZone)));
  const input: VoucherInput = {
    voucherNo,
    type: i.type,
    issuerDistrict: i.issuerDistrict,
    personRef: i.personRef,
    priorityGroups: i.priorityGroups ?? [],
    ...(i.awaitsClaim ? { awaitsClaim: true, issuedAt: i.obtainedAt } : { obtainedAt: i.obtainedAt }),
    searchAttributesOnChange: true,
    ...(i.projectedAtIssue ? { projectedAtIssue: true } : {}),
    policy,
  };
  if (i.occupationCode) input.occupationCode = i.occupationCode;
  return input;
}
