/** Workflows of the training area (registered by the voucher worker through workflows/index.ts). */
export { institutionWorkflow } from './institution';
export { classCompletionWorkflow } from './completion';
