/** Workflows of the settlement area (registered by the voucher worker through workflows/index.ts). */
export { settlementBatchWorkflow } from './batch';
