/**
 * Pure subsidy decision: every branch of R3.8–R3.12 as a function of its inputs, so the inputs can be
 * stored beside the result and every branch unit-tested without a database.
 */
import { isShaoxingDistrict } from '../policy/districts';
import type { ClassPlan, SettlementResult, VoucherType } from '../workflows/voucher/contract';

export const FUNDING_SOURCES = ['skills_upgrading_account', 'ui_employment_promotion', 'employment_subsidy'] as const;
export type FundingSource = (typeof FUNDING_SOURCES)[number];

/** R3.12: the payment route follows from the funding source. */
export function paymentRouteFor(source: FundingSource): 'agency_expenditure_account' | 'treasury_centralised_payment' {
  return source === 'employment_subsidy' ? 'treasury_centralised_payment' : 'agency_expenditure_account';
}

export interface PersonDistricts {
  uiDistrict: string | null;
  employmentDistrict: string | null;
  householdDistrict: string | null;
  residenceDistrict: string | null;
  unemploymentRegDistrict: string | null;
}

/** R3.8: the first Shaoxing district in the order UI place, employment place, household/residence place, unemployment registration place. */
export function generalPayerDistrict(p: PersonDistricts): string | null {
  const order = [p.uiDistrict, p.employmentDistrict, p.householdDistrict, p.residenceDistrict, p.unemploymentRegDistrict];
  return order.find((d) => isShaoxingDistrict(d)) ?? null;
}

export interface DecisionInputs {
  voucherType: VoucherType;
  issuerDistrict: string;
  personRef: string;
  classPlan: ClassPlan;
  attendedMinutes: number;
  totalMinutes: number;
  assessmentPassed: boolean;
  checkInRateThresholdPct: number;
  decidedAt: number;
  catalogueEntry: { id: number; amountFen: number; fundingSource: FundingSource } | null;
  /** General vouchers: the certificate as found in the registry, or null when absent. */
  certificate: { certificateNo: string; personRef: string; occupationCode: string; level: string } | null;
  certificateNoClaimed?: string;
  person: PersonDistricts | null;
}

function reject(reason: string, rule: string, decidedAt: number): SettlementResult {
  return { outcome: 'rejected', reason, rule, decidedAt };
}

export function decideSubsidy(i: DecisionInputs): SettlementResult {
  if (i.voucherType === 'directed') {
    // R3.10: check-in rate ≥ threshold (integer comparison: attended·100 ≥ threshold·total) and assessment passed.
    if (i.totalMinutes <= 0 || i.attendedMinutes * 100 < i.checkInRateThresholdPct * i.totalMinutes) {
      return reject('CHECK_IN_RATE_BELOW_THRESHOLD', 'R3.10', i.decidedAt);
    }
    if (!i.assessmentPassed) return reject('ASSESSMENT_NOT_PASSED', 'R3.10', i.decidedAt);
    if (!i.catalogueEntry) return reject('NO_CATALOGUE_ENTRY', 'R3.11', i.decidedAt);
    // R3.9: the institution is paid by the issuing district.
    return {
      outcome: 'approved',
      amountFen: i.catalogueEntry.amountFen,
      payerDistrict: i.issuerDistrict,
      payeeType: 'institution',
      payeeRef: i.classPlan.institutionId,
      fundingSource: i.catalogueEntry.fundingSource,
      paymentRoute: paymentRouteFor(i.catalogueEntry.fundingSource),
      decidedAt: i.decidedAt,
    };
  }
  // R3.8: general voucher, certificate training, paid to the person.
  if (!i.certificateNoClaimed) return reject('NO_CERTIFICATE', 'R3.8', i.decidedAt);
  const c = i.certificate;
  if (!c) return reject('CERTIFICATE_NOT_IN_REGISTRY', 'R3.13', i.decidedAt);
  if (c.personRef !== i.personRef) return reject('CERTIFICATE_OF_ANOTHER_PERSON', 'R3.13', i.decidedAt);
  if (c.occupationCode !== i.classPlan.occupationCode || c.level !== i.classPlan.level) {
    return reject('CERTIFICATE_OCCUPATION_OR_LEVEL_MISMATCH', 'R3.13', i.decidedAt);
  }
  if (!i.catalogueEntry) return reject('NO_CATALOGUE_ENTRY', 'R3.11', i.decidedAt);
  const payer = i.person ? generalPayerDistrict(i.person) : null;
  if (!payer) return reject('NO_PAYING_DISTRICT_IN_SHAOXING', 'R3.8', i.decidedAt);
  return {
    outcome: 'approved',
    amountFen: i.catalogueEntry.amountFen,
    payerDistrict: payer,
    payeeType: 'person',
    payeeRef: i.personRef,
    fundingSource: i.catalogueEntry.fundingSource,
    paymentRoute: paymentRouteFor(i.catalogueEntry.fundingSource),
    decidedAt: i.decidedAt,
  };
}
