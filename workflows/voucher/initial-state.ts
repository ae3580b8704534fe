/**
 * A voucher's state at issue, before any message: a pure function of its input. The workflow starts
 * from it, and the issuer (HR's single issue, a list's chunk) writes it to the read model as soon as it
 * has started the voucher (`writeStateAtIssue`), so HR sees vouchers before their workflows have run.
 */
import { addCalendarMonths } from '../../policy/calendar';
import { issuedAtOf, VoucherStatus, type VoucherInput, type VoucherSnapshot } from './contract';

export function initialSnapshot(input: VoucherInput): VoucherSnapshot {
  const { policy } = input;
  const zone = policy.timeZone;
  const issuedAt = issuedAtOf(input);
  return {
    revision: 0,
    voucherNo: input.voucherNo,
    type: input.type,
    status: VoucherStatus.Issued,
    issuerDistrict: input.issuerDistrict,
    personRef: input.personRef,
    occupationCode: input.occupationCode,
    priorityGroups: input.priorityGroups,
    policyVersion: policy.version,
    issuedAt,
    ...(input.awaitsClaim
      ? // R2.7, R3.3 (reading): the holder must obtain the voucher within N calendar months of issue.
        { claimDeadline: addCalendarMonths(issuedAt, policy.claimWindowMonths, zone) }
      : // R3.1: obtained at issue; activation within N calendar months of obtaining the voucher.
        { obtainedAt: issuedAt, activationDeadline: addCalendarMonths(issuedAt, policy.activationWindowMonths, zone) }),
    sessions: [],
    attendedMinutes: 0,
    totalMinutes: 0,
    checkInRate: 0,
  };
}
