/** Signals and queries of the training area's workflows. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ClassCompletionState, InstitutionState, ReapproveSignal, RecordStrikeSignal } from './contract';

export const recordStrikeSignal = defineSignal<[RecordStrikeSignal]>('recordStrike');
export const reapproveSignal = defineSignal<[ReapproveSignal]>('reapprove');
export const institutionStateQuery = defineQuery<InstitutionState>('institutionState');
export const classCompletionQuery = defineQuery<ClassCompletionState>('classCompletion');
