/** Workflows of the issuance area (registered by the voucher worker through workflows/index.ts). */
export { bulkIssuanceWorkflow } from './bulk';
