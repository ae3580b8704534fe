/** The voucher as the API shows it: local times, no person reference beyond what the caller's role may see. */
import { localIso } from '../policy/calendar';
import { DISTRICTS } from '../policy/districts';
import type { VoucherSnapshot } from '../workflows/voucher/contract';
import type { Principal } from './auth';

/** Public view of a voucher: no person reference beyond what the caller's role may see. */
export function view(s: VoucherSnapshot, p: Principal) {
  const zone = 'Asia/Shanghai';
  const t = (ms?: number) => (ms === undefined ? null : localIso(ms, zone));
  return {
    voucherNo: s.voucherNo,
    type: s.type,
    status: s.status,
    issuerDistrict: s.issuerDistrict,
    issuerDistrictName: DISTRICTS[s.issuerDistrict as keyof typeof DISTRICTS] ?? null,
    occupationCode: s.classPlan?.occupationCode ?? s.occupationCode ?? null,
    institutionId: s.classPlan?.institutionId ?? null,
    classId: s.classPlan?.classId ?? null,
    policyVersion: s.policyVersion,
    priorityGroups: p.role === 'holder' || p.role === 'institution' ? [] : s.priorityGroups,
    issuedAt: t(s.issuedAt ?? s.obtainedAt),
    claimDeadline: t(s.claimDeadline),
    claimedAt: t(s.claimedAt),
    claimChannel: s.claimChannel ?? null,
    obtainedAt: t(s.obtainedAt),
    activationDeadline: t(s.activationDeadline),
    activatedAt: t(s.activatedAt),
    useDeadline: t(s.useDeadline),
    enrolledAt: t(s.enrolledAt),
    completedAt: t(s.completedAt),
    endedAt: t(s.endedAt),
    endReason: s.endReason ?? null,
    sessions: s.sessions,
    attendedMinutes: s.attendedMinutes,
    totalMinutes: s.totalMinutes,
    checkInRate: s.checkInRate,
    assessmentPassed: s.assessmentPassed ?? null,
    settlement: s.settlement
      ? { ...s.settlement, decidedAt: t(s.settlement.decidedAt), payeeRef: s.settlement.payeeType === 'person' ? null : s.settlement.payeeRef }
      : null,
  };
}
