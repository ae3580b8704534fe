import { defineQuery } from '@temporalio/workflow';
import type { IssuanceProgress } from './contract';

/** Progress of a bulk issuance: {total, processed, issued, rejected, status}. */
export const issuanceProgressQuery = defineQuery<IssuanceProgress>('progress');
