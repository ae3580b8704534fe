/** Connections to Temporal for the API (client) and the worker, with the same address rules. */
import { Client, type WorkflowClientInterceptor } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { dataConverter, type CodecKeys } from './codec';
import { requestIdClientInterceptor } from './request-id';
import { TemporalBreaker, type BreakerEvents } from './temporal-breaker';

/**
 * How long one of the API's workflow queries may take. A query needs a worker to answer it: with
 * Temporal up but no worker polling (all workers down or deploying) the server holds it for as long as
 * the caller waits, so without a bound the request would hang. Past this the query fails (core reports
 * its own deadline as CANCELLED "Timeout expired") and the API answers 503 + Retry-After
 * (api/unavailable.ts). Every route that sends an Update reads the voucher by query first, so such a
 * route answers 503 before sending anything rather than leave an Update waiting for a worker.
 */
export const QUERY_TIMEOUT_MS = 30_000;

/**
 * How long one of the API's Updates may wait for a worker to accept it (api/updates.ts). Same reason as
 * QUERY_TIMEOUT_MS: the route's pre-check query proves a worker was there a moment ago, but a worker
 * that dies between the query and the Update would leave the request hanging. Past this the Update
 * fails (WorkflowUpdateRPCTimeoutOrCancelledError) and the API answers 503 + Retry-After.
 */
export const UPDATE_ACCEPT_TIMEOUT_MS = 30_000;

/**
 * The API's client, on the SDK's native connection (Rust core: HTTP/2 and retries outside the event
 * loop) rather than `Connection` (grpc-js, in JavaScript on the API's own thread). Measured in figure 3
 * (docs/PERFORMANCE.md §3): the API process answers ≈ 40 % more check-ins per second under 200
 * clients. Core retries a call that finds Temporal UNAVAILABLE for ≈ 9–10 s; the breaker
 * (lib/temporal-breaker.ts) makes every later call fail at once until Temporal answers again, so the
 * API answers 503 + Retry-After at once rather than after each request's retries.
 */
export async function connectClient(
  address: string,
  namespace: string,
  codecKeys: CodecKeys,
  events?: BreakerEvents,
  queryTimeoutMs = QUERY_TIMEOUT_MS,
  updateAcceptTimeoutMs = UPDATE_ACCEPT_TIMEOUT_MS,
): Promise<Client> {
  const connection = await NativeConnection.connect({ address });
  const breaker = new TemporalBreaker(() => connection.workflowService.getSystemInfo({}), events);
  const bounded: WorkflowClientInterceptor = {
    query: (input, next) => connection.withDeadline(Date.now() + queryTimeoutMs, () => next(input)),
    // Bounds sending the Update until a worker accepted it (the routes ask for stage ACCEPTED, then
    // wait for the result outside this bound: an accepted Update is durable and runs to its end).
    startUpdate: (input, next) => connection.withDeadline(Date.now() + updateAcceptTimeoutMs, () => next(input)),
  };
  return new Client({ connection, namespace, dataConverter: dataConverter(codecKeys), interceptors: { workflow: [breaker.interceptor(), bounded, requestIdClientInterceptor] } });
}

export async function connectNative(address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address });
}
