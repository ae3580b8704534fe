/** Every branch of the pure subsidy decision (R3.8–R3.12), without a database. */
import { decideSubsidy, generalPayerDistrict, paymentRouteFor, type DecisionInputs } from '../activities/settlement-decision';
import { POLICY_VERSIONS } from '../policy/policy';

const threshold = POLICY_VERSIONS[0]!.checkInRateThresholdPct;
const plan = { classId: 'C', institutionId: 'I', occupationCode: 'O', level: '4', trainingKind: 'certificate' as const, sessions: [] };
const base: DecisionInputs = {
  voucherType: 'directed', issuerDistrict: '330602', personRef: 'P1', classPlan: plan,
  attendedMinutes: threshold, totalMinutes: 100, assessmentPassed: true, checkInRateThresholdPct: threshold, decidedAt: 1,
  catalogueEntry: { id: 1, amountFen: 150_000, fundingSource: 'skills_upgrading_account' },
  certificate: null, person: null,
};
const none = { uiDistrict: null, employmentDistrict: null, householdDistrict: null, residenceDistrict: null, unemploymentRegDistrict: null };

describe('directed voucher', () => {
  test('R3.9 R3.10: at the threshold and passed → the institution is paid by the issuing district', () => {
    expect(decideSubsidy(base)).toMatchObject({ outcome: 'approved', payeeType: 'institution', payeeRef: 'I', payerDistrict: '330602', amountFen: 150_000 });
  });
  test('R3.10: one minute below the threshold → rejected (integer comparison, no rounding up)', () => {
    expect(decideSubsidy({ ...base, attendedMinutes: threshold * 100 - 1, totalMinutes: 10_000 })).toMatchObject({ outcome: 'rejected', reason: 'CHECK_IN_RATE_BELOW_THRESHOLD' });
  });
  test('R3.10: an empty plan is never at the threshold', () => {
    expect(decideSubsidy({ ...base, attendedMinutes: 0, totalMinutes: 0 }).outcome).toBe('rejected');
  });
  test('R3.10: failed assessment → rejected', () => {
    expect(decideSubsidy({ ...base, assessmentPassed: false }).reason).toBe('ASSESSMENT_NOT_PASSED');
  });
  test('R3.11: no catalogue entry → rejected', () => {
    expect(decideSubsidy({ ...base, catalogueEntry: null }).reason).toBe('NO_CATALOGUE_ENTRY');
  });
});

describe('general voucher', () => {
  const g: DecisionInputs = { ...base, voucherType: 'general', certificateNoClaimed: 'C1', certificate: { certificateNo: 'C1', personRef: 'P1', occupationCode: 'O', level: '4' }, person: { ...none, uiDistrict: '330681' } };
  test('R3.8: certificate matches → the person is paid by the UI place', () => {
    expect(decideSubsidy(g)).toMatchObject({ outcome: 'approved', payeeType: 'person', payeeRef: 'P1', payerDistrict: '330681' });
  });
  test('R3.8: no certificate claimed → rejected', () => {
    expect(decideSubsidy({ ...g, certificateNoClaimed: undefined }).reason).toBe('NO_CERTIFICATE');
  });
  test('R3.13: certificate not in the registry, of another person, or of another occupation/level → rejected', () => {
    expect(decideSubsidy({ ...g, certificate: null }).reason).toBe('CERTIFICATE_NOT_IN_REGISTRY');
    expect(decideSubsidy({ ...g, certificate: { ...g.certificate!, personRef: 'P2' } }).reason).toBe('CERTIFICATE_OF_ANOTHER_PERSON');
    expect(decideSubsidy({ ...g, certificate: { ...g.certificate!, level: '3' } }).reason).toBe('CERTIFICATE_OCCUPATION_OR_LEVEL_MISMATCH');
  });
  test('R3.8: paying district order: UI place, employment, household, residence, unemployment registration; outside Shaoxing skipped', () => {
    expect(generalPayerDistrict({ ...none, uiDistrict: '110105', employmentDistrict: '330603', householdDistrict: '330604' })).toBe('330603');
    expect(generalPayerDistrict({ ...none, householdDistrict: '330604', residenceDistrict: '330683' })).toBe('330604');
    expect(generalPayerDistrict({ ...none, residenceDistrict: '330683', unemploymentRegDistrict: '330624' })).toBe('330683');
    expect(generalPayerDistrict({ ...none, unemploymentRegDistrict: '330624' })).toBe('330624');
    expect(generalPayerDistrict(none)).toBeNull();
    expect(decideSubsidy({ ...g, person: { ...none, uiDistrict: '310101' } }).reason).toBe('NO_PAYING_DISTRICT_IN_SHAOXING');
  });
});

test('R3.12: funding source decides the payment route', () => {
  expect(paymentRouteFor('skills_upgrading_account')).toBe('agency_expenditure_account');
  expect(paymentRouteFor('ui_employment_promotion')).toBe('agency_expenditure_account');
  expect(paymentRouteFor('employment_subsidy')).toBe('treasury_centralised_payment');
});
