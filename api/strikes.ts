/**
 * R4.4: recording a strike against an institution. The strike has two halves — its row in the register
 * (`institution_strikes`, which keeps the evidence) and the signal that makes the institution's workflow
 * count it — and they happen together or not at all: the signal is sent inside the caller's transaction,
 * so a Temporal that cannot be reached rolls the row back and the API answers 503 with nothing changed;
 * a retry then records it once. The workflow ignores a strike ID it has seen, so sending again is safe.
 *
 * The window left: the signal is delivered and then PostgreSQL fails the commit. The workflow then counts
 * a strike whose row is missing until the caller retries: callers with a deterministic strike ID (a
 * clawback, a spot-check finding, HR's strike sent with an `Idempotency-Key`) write the same row on retry
 * and the workflow counts it once; only a plain strike retried without a key can be counted twice.
 */
import type { Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { institutionWorkflowId, type InstitutionWorkflowInput, type StrikeKind } from '../workflows/training/contract';
import { recordStrikeSignal } from '../workflows/training/messages';

export interface StrikeRecord {
  id: string;
  institutionId: string;
  kind: StrikeKind;
  /** Kept in the register only; the workflow's history sees `strike:<id>`. */
  evidence: string;
  district: string | null;
  principalId: string;
  /** ISO instant. */
  at: string;
}

/** Writes the strike's row (once per ID) and signals the institution workflow, inside `trx`. */
export async function recordStrike(trx: Knex.Transaction, client: Client, taskQueue: string, s: StrikeRecord): Promise<void> {
  await trx('institution_strikes')
    .insert({ id: s.id, institution_id: s.institutionId, kind: s.kind, evidence: s.evidence, district: s.district, principal_id: s.principalId, recorded_at: s.at })
    .onConflict('id')
    .ignore();
  await client.workflow.signalWithStart('institutionWorkflow', {
    workflowId: institutionWorkflowId(s.institutionId),
    taskQueue,
    args: [{ institutionId: s.institutionId } satisfies InstitutionWorkflowInput],
    signal: recordStrikeSignal,
    signalArgs: [{ strikeId: s.id, kind: s.kind, evidence: `strike:${s.id}`, by: s.principalId }],
  });
}
