/**
 * How the API sends a voucher's Updates (activate, enrol, claim). A worker must accept an Update before
 * it counts; with Temporal up but no worker polling (all workers down, or the last one dying after the
 * route's pre-check query) the server holds it for as long as the caller waits. The API's client bounds
 * that wait (`UPDATE_ACCEPT_TIMEOUT_MS`, lib/temporal-connection.ts), so the route answers 503 +
 * Retry-After instead of hanging (api/unavailable.ts).
 *
 * Such an Update may still be taken when a worker returns (the server keeps it while the workflow stays
 * in its cache), so its ID decides what a retry does:
 * - with an `Idempotency-Key` the ID comes from principal + key: the retry names the same Update and
 *   gets its one outcome, whether it ran meanwhile or runs now (never a second activation);
 * - without one the ID is new each time, and the retry meets the first one's effect (409, the voucher's
 *   status), as a retry after any lost answer would.
 * Only acceptance is bounded: once a worker has accepted the Update it runs to its result.
 */
import { WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Request } from 'express';
import { keyedIdFor } from './idempotency';

/** The Update ID for this request: derived from its Idempotency-Key if it has one, else left to the SDK. */
export function updateIdFor(kind: string, req: Request): string | undefined {
  return keyedIdFor(`update:${kind}`, req);
}

/** Sends `def` and waits for its result; the wait for a worker to accept it is the client's bound. */
export async function runUpdate<Ret, Arg>(handle: WorkflowHandle, def: UpdateDefinition<Ret, [Arg]>, arg: Arg, updateId?: string): Promise<Ret> {
  const update = await handle.startUpdate(def, { args: [arg], waitForStage: WorkflowUpdateStage.ACCEPTED, ...(updateId ? { updateId } : {}) });
  return update.result();
}
