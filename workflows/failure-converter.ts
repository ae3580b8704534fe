/**
 * Failure converter shared by workflows, worker and clients: failure messages and stack traces are
 * moved into an encoded attributes payload, so the payload codec encrypts them too. Loaded by path
 * (`failureConverterPath`) because the workflow sandbox needs its own instance.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
