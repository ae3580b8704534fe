/**
 * Activities of the issuance area (R2.3–R2.6): the person record the eligibility engine decides on,
 * starting a voucher workflow, and directed issuance of a trainee list, chunk by chunk.
 *
 * Every row of a list is issued at most once: `issuance_rows` is keyed by (list_id, row_no) and unique
 * on (list_id, person_ref); the voucher number and the whole voucher input are allocated once per row
 * in one transaction and reused by every retry, and starting a voucher that already runs counts as done.
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Db } from '../db/connection';
import { decideEligibility, validatePersonRecord, type PersonRecord, type Reason } from '../eligibility/engine';
import { buildVoucherInput, nextVoucherNos, policyInForceFromDb } from '../api/voucher-input';
import { localDate, localYear } from '../policy/calendar';
import type { PolicyParams } from '../policy/policy';
import { VoucherStatus, voucherWorkflowId, type VoucherInput } from '../workflows/voucher/contract';
import { ActivationDeadlineKey, IssuerDistrictKey, OccupationCodeKey, VoucherStatusKey, VoucherTypeKey } from '../workflows/voucher/search-attributes';
import type { voucherWorkflow } from '../workflows/voucher/workflow';
import type { ChunkResult } from '../workflows/issuance/contract';
import { initialSnapshot } from '../workflows/voucher/initial-state';
import { readModelRow, type ActivityDeps } from './voucher-activities';

/** A refusal reason of a list row or an issuance: stable code, the rule, a human detail. */
export interface RowReason {
  code: string;
  rule: string;
  detail: string;
}

/** The eligibility engine's view of registry rows (persons + ui_contributions). */
export function personRecordFromRows(
  row: Record<string, unknown>,
  contributions: { district: string; month: string }[],
): PersonRecord {
  const employmentDistrict = (row.employment_district as string | null) ?? null;
  return {
    civilService: Boolean(row.civil_service),
    householdDistrict: (row.household_district as string | null) ?? null,
    // Rows registered before 002 kept the residence permit place in residence_district.
    residencePermitDistrict: ((row.residence_permit_district ?? row.residence_district) as string | null) ?? null,
    employmentDistrict,
    // A row with an employment place but no recorded status (registered before 002) is employed there.
    employmentStatus: ((row.employment_status as PersonRecord['employmentStatus']) ?? null) ?? (employmentDistrict ? 'employed' : null),
    uiContributions: contributions.map((c) => ({ district: c.district, month: c.month })),
    uiPayingNow: row.ui_district ? { district: row.ui_district as string } : null,
    unemploymentRegDistrict: (row.unemployment_reg_district as string | null) ?? null,
    eastWestPartner: Boolean(row.east_west_partner),
    priorityGroups: ((row.priority_groups as string[] | null) ?? []).slice(),
  };
}

/** Loads persons and their UI history by person_ref, in batches (lists may name thousands). */
export async function loadPersonRecords(db: Db, personRefs: string[]): Promise<Map<string, { row: Record<string, unknown>; record: PersonRecord }>> {
  const out = new Map<string, { row: Record<string, unknown>; record: PersonRecord }>();
  const refs = [...new Set(personRefs)];
  for (let i = 0; i < refs.length; i += 1000) {
    const batch = refs.slice(i, i + 1000);
    const rows = await db('persons').whereIn('person_ref', batch);
    const contribs = await db('ui_contributions').whereIn('person_ref', batch).select('person_ref', 'district', 'month');
    const byRef = new Map<string, { district: string; month: string }[]>();
    for (const c of contribs) {
      const list = byRef.get(c.person_ref) ?? [];
      list.push({ district: c.district, month: c.month });
      byRef.set(c.person_ref, list);
    }
    for (const r of rows) out.set(r.person_ref, { row: r, record: personRecordFromRows(r, byRef.get(r.person_ref) ?? []) });
  }
  return out;
}

/** Reasons from the engine, or a single reason when the registry row cannot be decided on. */
export function eligibilityReasons(
  record: PersonRecord,
  kind: 'general' | 'directed',
  district: string,
  at: number,
  policy: PolicyParams,
): { eligible: boolean; reasons: RowReason[]; priorityGroups: string[] } {
  const valid = validatePersonRecord(record);
  if (!valid.ok) {
    return {
      eligible: false,
      reasons: [{ code: 'PERSON_RECORD_INVALID', rule: 'R2.1', detail: valid.issues.map((i) => `${i.path}: ${i.detail}`).join('; ') }],
      priorityGroups: [],
    };
  }
  const d = decideEligibility(record, kind, district, localDate(at, policy.timeZone), policy);
  return { eligible: d.eligible, reasons: d.reasons.map((r: Reason) => ({ code: r.code, rule: r.rule, detail: r.detail })), priorityGroups: d.priorityGroups };
}

/**
 * Writes the vouchers' state at issue (`initialSnapshot`, revision 0) to the read model, keeping any row
 * already there (a workflow's projection, or an earlier attempt): HR lists a voucher as soon as it is
 * started, whether or not its workflow has taken its first task.
 */
export async function writeStateAtIssue(db: Db, inputs: VoucherInput[]): Promise<void> {
  if (!inputs.length) return;
  await db('vouchers').insert(inputs.map((i) => readModelRow(db, initialSnapshot(i)))).onConflict('voucher_no').ignore();
}

/** Starts the voucher workflow of `input` (REJECT_DUPLICATE / FAIL: a number never runs twice). */
export async function startVoucherWorkflow(client: Client, taskQueue: string, input: VoucherInput) {
  const atIssue = initialSnapshot(input);
  return client.workflow.start<typeof voucherWorkflow>('voucherWorkflow', {
    workflowId: voucherWorkflowId(input.voucherNo),
    taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    staticSummary: `${input.voucherNo} · ${input.type} · ${input.issuerDistrict}`,
    typedSearchAttributes: [
      { key: VoucherTypeKey, value: input.type },
      { key: VoucherStatusKey, value: VoucherStatus.Issued },
      { key: IssuerDistrictKey, value: input.issuerDistrict },
      // The activation deadline is known once the voucher is obtained (at issue only without a claim step).
      ...(atIssue.activationDeadline === undefined ? [] : [{ key: ActivationDeadlineKey, value: new Date(atIssue.activationDeadline) }]),
      ...(input.occupationCode ? [{ key: OccupationCodeKey, value: input.occupationCode }] : []),
    ],
  });
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

/** A counting semaphore: at most `n` holders at once, the rest wait in order. */
function limiter(n: number) {
  let free = n;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free > 0) free -= 1;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free += 1;
    }
  };
}

/**
 * Workflow starts in flight from this worker process, across every chunk it runs at once: chunks
 * overlap their database phases with each other's starts, while the server sees a steady 32.
 */
export const MAX_CONCURRENT_STARTS = 32;

export function createIssuanceActivities(deps: ActivityDeps) {
  const { db } = deps;
  const clock = deps.now ?? Date.now;
  const startSlot = limiter(MAX_CONCURRENT_STARTS);

  return {
    /** Number of rows of a list, and the highest row number (the workflow's plan). */
    async issuanceListSize(listId: string): Promise<{ total: number }> {
      const list = await db('trainee_lists').where({ list_id: listId }).first();
      if (!list) throw new Error(`no trainee list ${listId}`);
      return { total: Number(list.total) };
    },

    /**
     * R2.4, R2.5: decides and issues rows [fromRow, toRow] of a list. Idempotent per row: a decided
     * row is skipped, an allocated voucher input is reused, an already started voucher counts as done.
     * Returns the counts of the whole range as stored, so a retry reports the same numbers.
     */
    async issueListChunk(a: { listId: string; fromRow: number; toRow: number; concurrency?: number }): Promise<ChunkResult> {
      const ctx = Context.current();
      const client = ctx.client;
      const taskQueue = ctx.info.taskQueue;
      const list = await db('trainee_lists').where({ list_id: a.listId }).first();
      if (!list) throw new Error(`no trainee list ${a.listId}`);
      const pending = await db('issuance_rows')
        .where({ list_id: a.listId, outcome: 'pending' })
        .whereBetween('row_no', [a.fromRow, a.toRow])
        .orderBy('row_no');
      if (pending.length) {
        const now = clock();
        const policy = await policyInForceFromDb(db, now);
        const persons = await loadPersonRecords(db, pending.map((r: { person_ref: string | null }) => r.person_ref).filter((x: string | null): x is string => !!x));

        // 1. Decide every row not yet allocated (pure, in memory); refused rows are stored with their reasons.
        type Row = { row_no: number; person_ref: string | null; voucher_input: VoucherInput | null };
        const toAllocate: { row: Row; priorityGroups: string[] }[] = [];
        for (const row of pending as Row[]) {
          if (row.voucher_input) continue;
          const p = row.person_ref ? persons.get(row.person_ref) : undefined;
          const decision = p
            ? eligibilityReasons(p.record, 'directed', list.district, now, policy)
            : { eligible: false, reasons: [{ code: 'PERSON_NOT_REGISTERED', rule: 'R2.5', detail: 'no person with this ID number in the registry' }], priorityGroups: [] };
          if (!decision.eligible) {
            await db('issuance_rows').where({ list_id: a.listId, row_no: row.row_no }).where({ outcome: 'pending' }).update({ outcome: 'rejected', reasons: JSON.stringify(decision.reasons), decided_at: new Date(now) });
            continue;
          }
          toAllocate.push({ row, priorityGroups: decision.priorityGroups });
        }
        // 2. Allocate the numbers and capture the inputs of the whole chunk in one transaction (one
        // counter update for the chunk: per row, the district-year counter row stayed locked for two
        // round trips per row and every concurrent chunk queued on it — see docs/PERFORMANCE.md, figure 6).
        // A row allocated by an earlier attempt keeps its input; an abort allocates (and wastes) nothing.
        if (toAllocate.length) {
          const allocated = await db.transaction(async (trx) => {
            const locked: { row_no: number; voucher_input: VoucherInput | null }[] = await trx('issuance_rows')
              .where({ list_id: a.listId })
              .whereIn('row_no', toAllocate.map((t) => t.row.row_no))
              .forUpdate()
              .select('row_no', 'voucher_input');
            const out = new Map<number, VoucherInput>(locked.filter((l) => l.voucher_input).map((l) => [l.row_no, l.voucher_input!]));
            const still = toAllocate.filter((t) => !out.has(t.row.row_no));
            const numbers = await nextVoucherNos(trx as unknown as Db, list.district, localYear(now, policy.timeZone), still.length);
            const values: (string | number)[] = [];
            for (let k = 0; k < still.length; k++) {
              const t = still[k]!;
              const built = await buildVoucherInput(trx as unknown as Db, {
                type: 'directed',
                issuerDistrict: list.district,
                personRef: t.row.person_ref!,
                occupationCode: list.occupation_code,
                priorityGroups: t.priorityGroups,
                obtainedAt: now,
                // R2.7: the named trainee obtains the voucher by claiming it through a channel.
                awaitsClaim: true,
                voucherNo: numbers[k]!,
                policy,
                // Step 3 writes the state at issue to the read model before the rows count as issued.
                projectedAtIssue: true,
              });
              out.set(t.row.row_no, built);
              values.push(t.row.row_no, built.voucherNo, JSON.stringify(built));
            }
            if (still.length) {
              await trx.raw(
                `update issuance_rows as r set voucher_no = v.voucher_no, voucher_input = v.input::jsonb
                 from (values ${still.map(() => '(?::int, ?, ?)').join(', ')}) as v(row_no, voucher_no, input)
                 where r.list_id = ? and r.row_no = v.row_no`,
                [...values, a.listId],
              );
            }
            return out;
          });
          for (const t of toAllocate) t.row.voucher_input = allocated.get(t.row.row_no) ?? null;
        }
        // 3. Start the vouchers; mark them issued in batches (a crash before the mark re-starts them:
        // an already started voucher counts as done). Each batch also writes its vouchers' state at issue
        // to the read model, so HR lists them at once instead of after their workflows' first tasks (with
        // a backlog of thousands, minutes later). A row does not count as issued before its batch is
        // written, and the activity retries until it is, so the workflows skip their own first projection
        // (`projectedAtIssue`); inputs captured before that flag existed project it, the same state
        // (revision 0, initialSnapshot), and whichever row got there first is kept.
        const ready = (pending as Row[]).filter((r) => r.voucher_input);
        const issuedRows: Row[] = [];
        const flush = async () => {
          const batch = issuedRows.splice(0);
          if (!batch.length) return;
          await writeStateAtIssue(db, batch.map((r) => r.voucher_input!));
          await db('issuance_rows').where({ list_id: a.listId }).whereIn('row_no', batch.map((r) => r.row_no)).where({ outcome: 'pending' }).update({ outcome: 'issued', decided_at: new Date(clock()) });
        };
        await pool(ready, a.concurrency ?? MAX_CONCURRENT_STARTS, async (row) => {
          await startSlot(async () => {
            try {
              await startVoucherWorkflow(client, taskQueue, row.voucher_input!);
            } catch (e) {
              if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
            }
          });
          issuedRows.push(row);
          ctx.heartbeat();
          if (issuedRows.length >= 50) await flush();
        });
        await flush();
      }
      const counts = await db('issuance_rows')
        .where({ list_id: a.listId })
        .whereBetween('row_no', [a.fromRow, a.toRow])
        .select('outcome')
        .count<{ outcome: string; n: number }[]>({ n: '*' })
        .groupBy('outcome');
      const by = (o: string) => Number(counts.find((c) => c.outcome === o)?.n ?? 0);
      return { processed: by('issued') + by('rejected'), issued: by('issued'), rejected: by('rejected') };
    },
  };
}
