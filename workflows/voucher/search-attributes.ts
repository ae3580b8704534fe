/** Typed custom search attributes of voucher workflows. None carries personal data. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const VoucherTypeKey = defineSearchAttributeKey('VoucherType', SearchAttributeType.KEYWORD);
export const VoucherStatusKey = defineSearchAttributeKey('VoucherStatus', SearchAttributeType.KEYWORD);
export const IssuerDistrictKey = defineSearchAttributeKey('IssuerDistrict', SearchAttributeType.KEYWORD);
export const OccupationCodeKey = defineSearchAttributeKey('OccupationCode', SearchAttributeType.KEYWORD);
export const InstitutionIdKey = defineSearchAttributeKey('InstitutionId', SearchAttributeType.KEYWORD);
export const ActivationDeadlineKey = defineSearchAttributeKey('ActivationDeadline', SearchAttributeType.DATETIME);
export const UseDeadlineKey = defineSearchAttributeKey('UseDeadline', SearchAttributeType.DATETIME);
export const CheckInRateKey = defineSearchAttributeKey('CheckInRate', SearchAttributeType.DOUBLE);

/** Every key the project registers with a Temporal namespace. */
export const ALL_SEARCH_ATTRIBUTE_KEYS = [
  VoucherTypeKey,
  VoucherStatusKey,
  IssuerDistrictKey,
  OccupationCodeKey,
  InstitutionIdKey,
  ActivationDeadlineKey,
  UseDeadlineKey,
  CheckInRateKey,
];
