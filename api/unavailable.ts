/**
 * A dependency that is down (PostgreSQL refusing or dropping connections, the pool unable to hand one
 * out in time, Temporal's frontend unreachable) is the caller's cue to come back later, not an internal
 * error: 503 with `Retry-After` and a stable problem type. Nothing was changed by such a request — a
 * write either did not reach the database or was rolled back with its transaction.
 */
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { Problem } from './problem';

/** Seconds a client should wait before retrying (also /readyz's). */
export const RETRY_AFTER_SECONDS = 5;

/** Socket-level failures on the way to PostgreSQL. */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/** PostgreSQL SQLSTATEs that mean "not now": shutdown in progress, cannot connect now, too many connections. */
const PG_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
/** node-postgres' messages for a connection that died under it (no code attached). */
const PG_MESSAGES = /Connection terminated|connection error|Connection ended unexpectedly|timeout expired|Client was closed and is not queryable|Timeout acquiring a connection/i;
/**
 * gRPC status codes: UNAVAILABLE (14), DEADLINE_EXCEEDED (4), and RESOURCE_EXHAUSTED (8) — the server
 * shedding load (rate limits, a workflow's query buffer full) after the client's own retries: busy, so
 * come back later, not an internal error.
 */
const GRPC_UNAVAILABLE = new Set([14, 4, 8]);
/** gRPC status CANCELLED. */
const GRPC_CANCELLED = 1;

function databaseDown(e: { name?: unknown; code?: unknown; message?: unknown }): boolean {
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.code === 'string' && (NET_CODES.has(e.code) || PG_CODES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code))) return true;
  return typeof e.message === 'string' && PG_MESSAGES.test(e.message);
}

/** The 503 problem for `err` if it says a dependency is unavailable; undefined otherwise. */
export function unavailableProblem(err: unknown): Problem | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const x = e as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    if (e instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      // The API's bound on a worker accepting an Update (api/updates.ts) passed.
      return new Problem(
        503,
        'TEMPORAL_UNAVAILABLE',
        'no worker took the request in time; it may still take effect when one does: retry with the same Idempotency-Key to get its one outcome, or read the voucher first',
      );
    }
    if (e instanceof ServiceError || x.name === 'ServiceError') {
      const cause = x.cause as { code?: unknown; message?: unknown } | undefined;
      const code = cause?.code;
      if (typeof code === 'number' && GRPC_UNAVAILABLE.has(code)) return new Problem(503, 'TEMPORAL_UNAVAILABLE', 'the workflow service is unavailable; retry later');
      // The native connection reports a call's own deadline passing (lib/temporal-connection.ts) as
      // CANCELLED with this message, where the server would have said DEADLINE_EXCEEDED.
      if (code === GRPC_CANCELLED && typeof cause?.message === 'string' && /^Timeout expired/.test(cause.message)) {
        return new Problem(503, 'TEMPORAL_UNAVAILABLE', 'the workflow did not answer in time (no worker may be running); retry later');
      }
    } else if (databaseDown(x)) {
      return new Problem(503, 'DATABASE_UNAVAILABLE', 'the database is unavailable; retry later');
    }
    e = x.cause;
  }
  return undefined;
}
