/** Signals, updates and queries of the voucher workflow; the API imports these for type safety. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  ActivateRequest,
  CheckInSignal,
  ClaimRequest,
  CompleteSignal,
  EnrolRequest,
  RevokeSignal,
  VoucherSnapshot,
} from './contract';

export const claimUpdate = defineUpdate<VoucherSnapshot, [ClaimRequest]>('claim');
export const activateUpdate = defineUpdate<VoucherSnapshot, [ActivateRequest]>('activate');
export const enrolUpdate = defineUpdate<VoucherSnapshot, [EnrolRequest]>('enrol');
export const checkInSignal = defineSignal<[CheckInSignal]>('checkIn');
export const completeSignal = defineSignal<[CompleteSignal]>('complete');
export const revokeSignal = defineSignal<[RevokeSignal]>('revoke');
export const stateQuery = defineQuery<VoucherSnapshot>('state');
