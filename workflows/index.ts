/** Every workflow the voucher worker registers. */
export { voucherWorkflow } from './voucher/workflow';
