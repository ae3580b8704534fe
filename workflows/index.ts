/** Every workflow the worker registers. */
export { voucherWorkflow } from './voucher/workflow';
export * from './issuance/workflows';
export * from './training/workflows';
export * from './settlement/workflows';
export { retentionWorkflow } from './maintenance/workflow';
