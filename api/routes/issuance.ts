/**
 * Routes of the issuance area (authenticated; mounted under /v1): the person registry (R1, R2.3, R2.4),
 * single issuance with eligibility (R1.2, R2.1, R2.3, R2.4), directed issuance from trainee lists
 * (R2.5, R2.6) and channel claims after real-name verification (R2.7).
 */
import { createHash } from 'node:crypto';
import express, { Router, type Request } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import {
  eligibilityReasons,
  loadPersonRecords,
  startVoucherWorkflow,
  writeStateAtIssue,
  type RowReason,
} from '../../activities/issuance-activities';
import { isPriorityGroup, validatePersonRecord } from '../../eligibility/engine';
import { isValidResidentId, maskTail } from '../../lib/pii';
import { localIso } from '../../policy/calendar';
import { isShaoxingDistrict } from '../../policy/districts';
import { issuanceWorkflowId, LIST_ID_PATTERN, LIST_PARALLEL_CHUNKS, listChunkSize, type IssuanceProgress } from '../../workflows/issuance/contract';
import { issuanceProgressQuery } from '../../workflows/issuance/messages';
import type { bulkIssuanceWorkflow } from '../../workflows/issuance/bulk';
import { CLAIM_CHANNELS, TERMINAL_STATUSES, VOUCHER_NO_PATTERN, VOUCHER_TASK_QUEUE, voucherWorkflowId, type VoucherSnapshot } from '../../workflows/voucher/contract';
import { initialSnapshot } from '../../workflows/voucher/initial-state';
import { claimUpdate, stateQuery } from '../../workflows/voucher/messages';
import { hrDistrict, ownInstitutionId, requireRole, type Principal } from '../auth';
import { asyncRoute, hasNul, keysetPage, parse, type ApiDeps } from '../http';
import { disclose } from '../disclosure';
import { Problem } from '../problem';
import { refusalFrom } from '../refusal';
import { PLAN_ID_PATTERN, planAccepted } from './plans';
import { buildVoucherInput, policyInForceFromDb } from '../voucher-input';
import type { Db } from '../../db/connection';
import { view } from '../voucher-view';
import { runUpdate } from '../updates';

const ID_NUMBER = z.string().refine(isValidResidentId, 'not a valid 18-character resident ID number (GB 11643 check digit)');
const PHONE = z.string().regex(/^[0-9+-]{5,20}$/, 'phone: 5–20 digits');
const NAME = z.string().trim().min(1).max(50);

const IssueBody = z
  .object({
    type: z.enum(['general', 'directed']),
    idNumber: ID_NUMBER,
    occupationCode: z.string().regex(/^[0-9A-Za-z-]{1,20}$/).optional(),
    priorityGroups: z.array(z.string().regex(/^[a-z_]{1,40}$/)).max(10).optional(),
  })
  .strict();

/** Identity part of a registration (zod); the eligibility part is checked by validatePersonRecord. */
const PersonBody = z
  .object({
    idNumber: ID_NUMBER,
    name: NAME,
    phone: PHONE,
    bankAccount: z.string().regex(/^[0-9]{8,32}$/, '8–32 digits').optional(),
    civilService: z.unknown(),
    householdDistrict: z.unknown().optional(),
    residencePermitDistrict: z.unknown().optional(),
    employmentDistrict: z.unknown().optional(),
    employmentStatus: z.unknown().optional(),
    uiContributions: z.array(z.unknown()).max(1200).optional(),
    uiPayingNow: z.unknown().optional(),
    unemploymentRegDistrict: z.unknown().optional(),
    eastWestPartner: z.unknown().optional(),
    priorityGroups: z.array(z.unknown()).max(10).optional(),
  })
  .strict();

const ClaimBody = z.object({ channel: z.enum(CLAIM_CHANNELS), name: NAME, idNumber: ID_NUMBER, phone: PHONE }).strict();

const ListMeta = z
  .object({
    listId: z.string().regex(LIST_ID_PATTERN, 'listId: 1–64 of A–Z a–z 0–9 _ -'),
    district: z.string().refine((d) => isShaoxingDistrict(d), 'district: one of the six Shaoxing district codes'),
    occupationCode: z.string().regex(/^[0-9A-Za-z-]{1,20}$/),
    /** R2.6: an industry department's list names the filed training plan it belongs to. */
    planId: z.string().regex(PLAN_ID_PATTERN, 'planId: 1–64 of A–Z a–z 0–9 _ -').optional(),
  })
  .strict();
const ListRow = z.object({ idNumber: z.string().max(40), name: z.string().max(100), phone: z.string().max(40) }).strict();
const ListBody = ListMeta.extend({ rows: z.array(ListRow).min(1).max(200_000) }).strict();
const CSV_COLUMNS = ['idNumber', 'name', 'phone'] as const;

const RowsQuery = z
  .object({
    outcome: z.enum(['pending', 'issued', 'rejected']).optional(),
    offset: z.coerce.number().int().min(0).default(0),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(300).optional(),
  })
  .strict();


/** 422 listing every reason; the top-level code and rule are the first reason's. */
function refusal(reasons: RowReason[]): Problem {
  const first = reasons[0]!;
  return new Problem(422, first.code, reasons.map((r) => r.detail).join('; '), first.rule, { reasons });
}

/**
 * Whether a registry record ties a person to a district: 户籍, 居住证, employment, UI paid there now or
 * ever, or unemployment registration; an east–west partner-area person ties to every district (R2.4).
 * District HR registers and reads the people of its own district only.
 */
function linkedTo(
  p: {
    householdDistrict: string | null;
    residencePermitDistrict: string | null;
    employmentDistrict: string | null;
    unemploymentRegDistrict: string | null;
    uiPayingNow: { district: string } | null;
    uiContributions: { district: string }[];
    eastWestPartner: boolean;
  },
  district: string,
): boolean {
  return (
    p.eastWestPartner ||
    [p.householdDistrict, p.residencePermitDistrict, p.employmentDistrict, p.unemploymentRegDistrict, p.uiPayingNow?.district].includes(district) ||
    p.uiContributions.some((c) => c.district === district)
  );
}

export function issuanceRoutes(deps: ApiDeps): Router {
  const { db, client, pii, logger } = deps;
  const taskQueue = deps.taskQueue ?? VOUCHER_TASK_QUEUE;
  const now = deps.now ?? Date.now;
  const r = Router();

  const decrypt = (v: string | null | undefined) => (v ? pii.decrypt(v) : null);

  /** A registry record as `viewer` may see it (api/disclosure.ts decides what is masked). */
  async function personView(personRef: string, viewer: Principal) {
    const row = await db('persons').where({ person_ref: personRef }).first();
    if (!row) return null;
    const history = await db('ui_contributions').where({ person_ref: personRef }).orderBy(['district', 'month']).select('district', 'month');
    const phone = decrypt(row.phone_enc);
    const account = decrypt(row.bank_account_enc);
    return {
      personRef,
      idNumber: disclose(viewer, 'idNumber', pii.decrypt(row.id_number_enc)),
      name: disclose(viewer, 'name', pii.decrypt(row.name_enc)),
      phone: disclose(viewer, 'phone', phone),
      bankAccount: disclose(viewer, 'account', account),
      civilService: row.civil_service,
      householdDistrict: row.household_district,
      residencePermitDistrict: row.residence_permit_district,
      employmentDistrict: row.employment_district,
      employmentStatus: row.employment_status,
      uiPayingNow: row.ui_district ? { district: row.ui_district } : null,
      uiContributions: history,
      unemploymentRegDistrict: row.unemployment_reg_district,
      eastWestPartner: row.east_west_partner,
      priorityGroups: row.priority_groups,
    };
  }

  // ---- person registry (district HR; R1, R2.3, R2.4) -------------------------------------------
  r.post(
    '/persons',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const district = hrDistrict(req);
      const body = parse(PersonBody, req.body);
      const record = {
        civilService: body.civilService,
        householdDistrict: body.householdDistrict ?? null,
        residencePermitDistrict: body.residencePermitDistrict ?? null,
        employmentDistrict: body.employmentDistrict ?? null,
        employmentStatus: body.employmentStatus ?? null,
        uiContributions: body.uiContributions ?? [],
        uiPayingNow: body.uiPayingNow ?? null,
        unemploymentRegDistrict: body.unemploymentRegDistrict ?? null,
        eastWestPartner: body.eastWestPartner ?? false,
        priorityGroups: body.priorityGroups ?? [],
      };
      const v = validatePersonRecord(record);
      if (!v.ok) {
        throw new Problem(400, 'INVALID_PERSON_RECORD', v.issues.map((i) => `${i.path}: ${i.detail}`).join('; '), null, {
          errors: v.issues.map((i) => ({ path: i.path, code: i.code, message: i.detail })),
        });
      }
      const p = v.record;
      if (!linkedTo(p, district)) {
        throw new Problem(422, 'NO_LINK_TO_DISTRICT', `the record ties the person to no link with district ${district}: a district registers its own people`, 'R2.4');
      }
      const personRef = pii.personRef(body.idNumber);
      const idNumber = body.idNumber.trim().toUpperCase();
      const months = new Map<string, { person_ref: string; district: string; month: string }>();
      for (const c of p.uiContributions) months.set(`${c.district}|${c.month}`, { person_ref: personRef, district: c.district, month: c.month });
      const row = {
        person_ref: personRef,
        id_number_enc: pii.encrypt(idNumber),
        id_number_last4: idNumber.slice(-4),
        name_enc: pii.encrypt(body.name),
        phone_enc: pii.encrypt(body.phone),
        household_district: p.householdDistrict,
        residence_district: p.residencePermitDistrict,
        residence_permit_district: p.residencePermitDistrict,
        employment_district: p.employmentDistrict,
        employment_status: p.employmentStatus,
        ui_district: p.uiPayingNow?.district ?? null,
        unemployment_reg_district: p.unemploymentRegDistrict,
        civil_service: p.civilService,
        east_west_partner: p.eastWestPartner,
        priority_groups: [...new Set(p.priorityGroups)],
        updated_at: new Date(now()),
        ...(body.bankAccount ? { bank_account_enc: pii.encrypt(body.bankAccount) } : {}),
      };
      const created = await db.transaction(async (trx) => {
        const existed = await trx('persons').where({ person_ref: personRef }).forUpdate().first();
        // R3.13: money goes to the registered account. Once a person is registered, the account changes
        // only through the audited correction (PUT /v1/persons/{personRef}/bank-account, HR of one of the
        // person's districts), never by re-registering, which any district's HR may do.
        if (existed && body.bankAccount && decrypt(existed.bank_account_enc) !== body.bankAccount) {
          throw new Problem(409, 'ACCOUNT_CHANGE_NEEDS_CORRECTION', `change the bank account with PUT /v1/persons/${personRef}/bank-account (audited)`, 'R3.13');
        }
        if (existed) await trx('persons').where({ person_ref: personRef }).update(row);
        else {
          await trx('persons').insert(row);
          // The first registered account is audited like every later correction (masked values only).
          if (body.bankAccount) {
            await trx('account_changes').insert({ person_ref: personRef, old_masked: null, new_masked: maskTail(body.bankAccount), principal_id: req.principal!.id, changed_at: new Date(now()).toISOString() });
          }
        }
        // The UI history is replaced whole: the register is the source of truth (R2.3).
        await trx('ui_contributions').where({ person_ref: personRef }).del();
        const all = [...months.values()];
        for (let i = 0; i < all.length; i += 500) await trx('ui_contributions').insert(all.slice(i, i + 500));
        return !existed;
      });
      logger.info({ personRef, by: req.principal!.id }, created ? 'person registered' : 'person updated');
      res.status(created ? 201 : 200).location(`/v1/persons/${personRef}`).json(await personView(personRef, req.principal!));
    }),
  );

  r.get(
    '/persons/:personRef',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const district = hrDistrict(req);
      const ref = String(req.params.personRef);
      const v = /^P[0-9a-f]{40}$/.test(ref) ? await personView(ref, req.principal!) : null;
      // Out of the HR's district (no link, no voucher it issued): exactly as for an unknown person.
      const issuedHere = v ? await db('vouchers').where({ person_ref: ref, issuer_district: district }).first('voucher_no') : undefined;
      if (!v || !(linkedTo(v, district) || issuedHere)) throw new Problem(404, 'PERSON_NOT_FOUND');
      res.json(v);
    }),
  );

  // ---- issue one voucher (district HR; R2.1, R1.2, R2.3, R2.4) ---------------------------------
  r.post(
    '/vouchers',
    requireRole('hr'),
    asyncRoute(async (req, res) => {
      const body = parse(IssueBody, req.body);
      const district = hrDistrict(req);
      const personRef = pii.personRef(body.idNumber);
      const person = (await loadPersonRecords(db, [personRef])).get(personRef);
      if (!person) throw new Problem(422, 'PERSON_NOT_REGISTERED', 'no person with this ID number in the registry', 'R2.1');
      const obtainedAt = now();
      const policy = await policyInForceFromDb(db, obtainedAt);
      const decision = eligibilityReasons(person.record, body.type, district, obtainedAt, policy);
      if (!decision.eligible) throw refusal(decision.reasons);
      if (body.type === 'general' && body.occupationCode) {
        throw new Problem(400, 'INVALID_REQUEST', 'a general voucher fixes no occupation', 'R2.2');
      }
      const unknown = (body.priorityGroups ?? []).filter((g) => !isPriorityGroup(g));
      if (unknown.length) throw new Problem(400, 'UNKNOWN_PRIORITY_GROUP', `unknown priority group(s): ${unknown.join(', ')}`, 'R2.4');
      const input = await buildVoucherInput(db, {
        type: body.type,
        issuerDistrict: district,
        personRef,
        occupationCode: body.occupationCode,
        // R2.4: the registry's groups are recorded; HR may add (never remove) groups at issue.
        priorityGroups: [...new Set([...decision.priorityGroups, ...(body.priorityGroups ?? [])])],
        obtainedAt,
        // R2.7: the holder obtains it by claiming it through a channel; the activation clock starts then.
        awaitsClaim: true,
      });
      await startVoucherWorkflow(client, taskQueue, input);
      // The answer is the state at issue, a pure function of the input: it needs no worker to be up (a
      // query would, and a 5xx after the start would report a voucher that exists as not issued). The
      // same state goes to the read model at once, so HR's lists show the voucher before its workflow's
      // first task; the workflow's own projection of it (this input has no `projectedAtIssue`) keeps it.
      const s = initialSnapshot(input);
      await writeStateAtIssue(db, [input]);
      logger.info({ voucherNo: input.voucherNo, by: req.principal!.id }, 'voucher issued');
      res.status(201).location(`/v1/vouchers/${input.voucherNo}`).json(view(s, req.principal!));
    }),
  );

  // ---- claim through a channel after real-name verification (holder; R2.7) ---------------------
  r.post(
    '/vouchers/:voucherNo/claim',
    requireRole('holder'),
    asyncRoute(async (req, res) => {
      const body = parse(ClaimBody, req.body);
      const voucherNo = String(req.params.voucherNo);
      if (!VOUCHER_NO_PATTERN.test(voucherNo)) throw new Problem(404, 'VOUCHER_NOT_FOUND');
      const handle = client.workflow.getHandle(voucherWorkflowId(voucherNo));
      let s: VoucherSnapshot;
      try {
        s = await handle.query(stateQuery);
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) throw new Problem(404, 'VOUCHER_NOT_FOUND');
        throw e;
      }
      if (s.personRef !== req.principal!.personRef) throw new Problem(404, 'VOUCHER_NOT_FOUND');
      // R2.7: real-name verification against the registry before the voucher reaches the holder.
      const person = await db('persons').where({ person_ref: s.personRef }).first();
      const same = (a: string | null, b: string) => a !== null && a.trim() === b.trim();
      if (!person || pii.personRef(body.idNumber) !== s.personRef || !same(decrypt(person.name_enc), body.name) || !same(decrypt(person.phone_enc), body.phone)) {
        throw new Problem(422, 'IDENTITY_MISMATCH', 'name, ID number and phone must match the real-name registry', 'R2.7');
      }
      // Claimed before: the first claim stands (same answer, nothing changes).
      let claimed = s;
      let mine = false;
      if (s.claimedAt === undefined) {
        if ((TERMINAL_STATUSES as readonly string[]).includes(s.status)) throw new Problem(409, 'VOUCHER_CLOSED', `status is ${s.status}`);
        try {
          // One Update ID per voucher: concurrent claims collapse into one, and all see its result.
          claimed = await runUpdate(handle, claimUpdate, { channel: body.channel }, `claim-${voucherNo}`);
        } catch (e) {
          throw refusalFrom(e) ?? e;
        }
        mine = claimed.claimChannel === body.channel;
      }
      const zone = 'Asia/Shanghai';
      logger.info({ voucherNo, channel: claimed.claimChannel, by: req.principal!.id }, mine ? 'voucher claimed' : 'voucher claim repeated');
      res.status(mine ? 201 : 200).json({
        voucherNo,
        status: claimed.status,
        channel: claimed.claimChannel!,
        claimedAt: localIso(claimed.claimedAt!, zone),
        activationDeadline: localIso(claimed.activationDeadline!, zone),
        alreadyClaimed: !mine,
      });
    }),
  );

  // ---- directed issuance from a trainee list (institution / industry department; R2.5, R2.6) ---
  r.post(
    '/trainee-lists',
    requireRole('institution'),
    express.text({ type: ['text/csv'], limit: '50mb' }),
    express.json({ limit: '50mb' }),
    asyncRoute(async (req, res) => {
      // This route parses its own (large) body, after the app-wide NUL guard.
      if (hasNul(req.body)) throw new Problem(400, 'INVALID_REQUEST', 'NUL characters are not allowed');
      const institutionId = ownInstitutionId(req);
      const inst = await db('institutions').where({ id: institutionId }).first();
      if (!inst) throw new Problem(403, 'FORBIDDEN_SCOPE', 'institution principal has no institution');
      const rule = inst.kind === 'industry_department' ? 'R2.6' : 'R2.5';
      if (inst.status !== 'approved') {
        throw new Problem(422, 'INSTITUTION_NOT_APPROVED', `the uploader is ${inst.status}, not approved`, inst.kind === 'industry_department' ? 'R2.6' : 'R4.1');
      }

      let meta: z.infer<typeof ListMeta>;
      let rows: { idNumber: string; name: string; phone: string }[];
      if (req.is('text/csv')) {
        meta = parse(ListMeta, req.query);
        if (typeof req.body !== 'string' || !req.body.trim()) throw new Problem(400, 'INVALID_CSV', 'empty CSV body');
        let records: string[][];
        try {
          records = parseCsv(req.body, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: false });
        } catch (e) {
          throw new Problem(400, 'INVALID_CSV', (e as Error).message.slice(0, 300));
        }
        const header = records[0] ?? [];
        const missing = CSV_COLUMNS.filter((c) => !header.includes(c));
        if (missing.length) throw new Problem(400, 'CSV_MISSING_COLUMN', `the CSV header lacks ${missing.join(', ')} (needs ${CSV_COLUMNS.join(',')})`, rule);
        const idx = CSV_COLUMNS.map((c) => header.indexOf(c));
        rows = records.slice(1).map((rec) => ({ idNumber: rec[idx[0]!] ?? '', name: rec[idx[1]!] ?? '', phone: rec[idx[2]!] ?? '' }));
        if (!rows.length) throw new Problem(400, 'INVALID_CSV', 'the CSV has no data rows');
      } else {
        const body = parse(ListBody, req.body);
        ({ rows, ...meta } = body);
      }

      // R2.6: an industry department uploads under a plan filed with, and acknowledged by, HR and finance.
      const planOf = async (q: Db) => {
        if (!meta.planId) {
          if (inst.kind === 'industry_department') throw new Problem(422, 'PLAN_REQUIRED', 'an industry department uploads trainee lists under a filed training plan (planId)', 'R2.6');
          return undefined;
        }
        if (inst.kind !== 'industry_department') throw new Problem(400, 'INVALID_REQUEST', 'planId: only industry departments upload under a training plan');
        const plan = await q('training_plans').where({ plan_id: meta.planId }).forUpdate().first();
        if (!plan || plan.department_id !== inst.id) throw new Problem(422, 'PLAN_NOT_FOUND', `no training plan ${meta.planId} filed by this department`, 'R2.6');
        if (!planAccepted(plan)) throw new Problem(422, 'PLAN_NOT_ACKNOWLEDGED', 'the plan awaits acknowledgement by the HR and finance bureaus', 'R2.6');
        if (plan.district !== meta.district || plan.occupation_code !== meta.occupationCode) {
          throw new Problem(422, 'PLAN_MISMATCH', `the plan is for district ${plan.district}, occupation ${plan.occupation_code}`, 'R2.6');
        }
        const listed = await q('trainee_lists').where({ plan_id: plan.plan_id }).whereNot({ list_id: meta.listId }).sum<{ n: string | null }[]>({ n: 'total' });
        const already = Number(listed[0]?.n ?? 0);
        if (already + rows.length > plan.trainees) {
          throw new Problem(422, 'PLAN_TRAINEES_EXCEEDED', `the plan covers ${plan.trainees} trainees; ${already} are already listed and this list names ${rows.length}`, 'R2.6');
        }
        return plan.plan_id as string;
      };

      const contentHash = createHash('sha256')
        .update(JSON.stringify([meta.district, meta.occupationCode, meta.planId ?? null, rows.map((x) => [x.idNumber.trim().toUpperCase(), x.name.trim(), x.phone.trim()])]))
        .digest('hex');
      const location = `/v1/issuance-jobs/${meta.listId}`;

      const startJob = async () => {
        try {
          await client.workflow.start<typeof bulkIssuanceWorkflow>('bulkIssuanceWorkflow', {
            workflowId: issuanceWorkflowId(meta.listId),
            taskQueue,
            args: [{ listId: meta.listId, chunkSize: listChunkSize(rows.length), parallelChunks: LIST_PARALLEL_CHUNKS }],
            workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
            staticSummary: `trainee list ${meta.listId} · ${meta.district} · ${meta.occupationCode}`,
          });
        } catch (e) {
          if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
        }
      };
      const existingAnswer = async (existing: { content_hash: string; institution_id: string }) => {
        if (existing.content_hash !== contentHash || existing.institution_id !== inst.id) {
          throw new Problem(409, 'LIST_ID_CONFLICT', `list ${meta.listId} was uploaded with other content`, rule);
        }
        await startJob(); // a crash between storing and starting is healed by the re-upload
        res.status(200).location(location).json(await progressOf(meta.listId));
      };

      const prior = await db('trainee_lists').where({ list_id: meta.listId }).first();
      if (prior) return existingAnswer(prior);
      await planOf(db); // refuse early, before any row is checked; re-checked under lock below

      // Check every row; only rows naming a distinct, registered, matching person go to the job.
      const seen = new Set<string>();
      const checked = rows.map((x, i) => {
        const id = x.idNumber.trim().toUpperCase();
        const out = { row_no: i + 1, person_ref: null as string | null, id_last4: id.slice(-4) || null, reasons: [] as RowReason[], name: x.name.trim(), phone: x.phone.trim() };
        if (!isValidResidentId(id)) {
          out.reasons.push({ code: 'INVALID_ID_NUMBER', rule, detail: 'not a valid 18-character resident ID number' });
          return out;
        }
        const ref = pii.personRef(id);
        if (seen.has(ref)) {
          out.reasons.push({ code: 'DUPLICATE_ROW', rule, detail: 'this person is already named in an earlier row of the list' });
          return out;
        }
        seen.add(ref);
        out.person_ref = ref;
        return out;
      });
      const refs = checked.map((c) => c.person_ref).filter((x): x is string => !!x);
      const registry = new Map<string, { name_enc: string; phone_enc: string | null }>();
      for (let i = 0; i < refs.length; i += 1000) {
        for (const p of await db('persons').whereIn('person_ref', refs.slice(i, i + 1000)).select('person_ref', 'name_enc', 'phone_enc')) registry.set(p.person_ref, p);
      }
      for (const c of checked) {
        if (!c.person_ref) continue;
        const p = registry.get(c.person_ref);
        if (!p) c.reasons.push({ code: 'PERSON_NOT_REGISTERED', rule, detail: 'no person with this ID number in the registry' });
        else if (decrypt(p.name_enc) !== c.name || decrypt(p.phone_enc) !== c.phone) {
          c.reasons.push({ code: 'IDENTITY_MISMATCH', rule, detail: 'name or phone does not match the registry' });
        }
        // A refused row keeps its person_ref only when it is the row's single mention of the person.
      }

      const stored = await db.transaction(async (trx) => {
        // The plan row is locked so two lists cannot together exceed its trainees.
        const planId = await planOf(trx as unknown as Db);
        const ins = await trx('trainee_lists')
          .insert({
            list_id: meta.listId,
            plan_id: planId ?? null,
            uploader_principal: req.principal!.id,
            institution_id: inst.id,
            district: meta.district,
            occupation_code: meta.occupationCode,
            content_hash: contentHash,
            total: checked.length,
          })
          .onConflict('list_id')
          .ignore()
          .returning('list_id');
        if (!ins.length) return false;
        const all = checked.map((c) => ({
          list_id: meta.listId,
          row_no: c.row_no,
          person_ref: c.person_ref,
          id_last4: c.id_last4,
          outcome: c.reasons.length ? 'rejected' : 'pending',
          reasons: JSON.stringify(c.reasons),
          decided_at: c.reasons.length ? new Date(now()) : null,
        }));
        for (let i = 0; i < all.length; i += 1000) await trx('issuance_rows').insert(all.slice(i, i + 1000));
        return true;
      });
      if (!stored) return existingAnswer(await db('trainee_lists').where({ list_id: meta.listId }).first());
      await startJob();
      logger.info({ listId: meta.listId, rows: checked.length, by: req.principal!.id }, 'trainee list accepted');
      res.status(202).location(location).json(await progressOf(meta.listId));
    }),
  );

  /** The job's progress: the workflow's query, or the stored rows when the workflow is not reachable. */
  async function progressOf(listId: string): Promise<IssuanceProgress> {
    try {
      const p = await client.workflow.getHandle(issuanceWorkflowId(listId)).query(issuanceProgressQuery);
      if (p.total > 0) return p;
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError)) logger.warn({ listId, err: (e as Error).message }, 'issuance progress query failed');
    }
    const list = await db('trainee_lists').where({ list_id: listId }).first();
    const counts = await db('issuance_rows').where({ list_id: listId }).select('outcome').count<{ outcome: string; n: number }[]>({ n: '*' }).groupBy('outcome');
    const by = (o: string) => Number(counts.find((c) => c.outcome === o)?.n ?? 0);
    return {
      listId,
      total: Number(list.total),
      processed: by('issued') + by('rejected'),
      issued: by('issued'),
      rejected: by('rejected'),
      status: by('pending') === 0 ? 'completed' : 'running',
    };
  }

  async function visibleList(req: Request) {
    const listId = String(req.params.listId);
    const list = LIST_ID_PATTERN.test(listId) ? await db('trainee_lists').where({ list_id: listId }).first() : undefined;
    const p = req.principal!;
    const ok = list && ((p.role === 'institution' && p.institutionId === list.institution_id) || (p.role === 'hr' && p.district === list.district));
    if (!ok) throw new Problem(404, 'ISSUANCE_JOB_NOT_FOUND');
    return list;
  }

  r.get(
    '/issuance-jobs/:listId',
    requireRole('institution', 'hr'),
    asyncRoute(async (req, res) => {
      const list = await visibleList(req);
      res.json({ ...(await progressOf(list.list_id)), district: list.district, occupationCode: list.occupation_code });
    }),
  );

  r.get(
    '/issuance-jobs/:listId/rows',
    requireRole('institution', 'hr'),
    asyncRoute(async (req, res) => {
      const list = await visibleList(req);
      const q = parse(RowsQuery, req.query);
      let rows = db('issuance_rows').where({ list_id: list.list_id });
      if (q.outcome) rows = rows.where({ outcome: q.outcome });
      const selected = rows.select('row_no', 'id_last4', 'outcome', 'reasons', 'voucher_no');
      // Cursor pagination by row number (an offset still works when no cursor is given).
      const page = await keysetPage<{ row_no: number; id_last4: string | null; outcome: string; reasons: RowReason[]; voucher_no: string | null }>(q.cursor ? selected : selected.offset(q.offset), ['row_no'], q);
      res.json({
        nextCursor: page.nextCursor,
        items: page.rows.map((x: { row_no: number; id_last4: string | null; outcome: string; reasons: RowReason[]; voucher_no: string | null }) => ({
          rowNo: x.row_no,
          idNumber: x.id_last4 ? maskTail(`**************${x.id_last4}`) : null,
          outcome: x.outcome,
          reasons: x.reasons,
          voucherNo: x.outcome === 'issued' ? x.voucher_no : null,
        })),
      });
    }),
  );

  return r;
}
