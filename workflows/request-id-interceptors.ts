/**
 * Carries the API request ID through Temporal: the client puts it in a `request-id` header of every
 * start, signal and update; here the workflow picks it up from each inbound call, adds it to every
 * workflow log line, and forwards it to the activities it schedules. (Loaded into the workflow
 * bundle as an interceptor module.)
 */
import { defaultPayloadConverter, type Headers } from '@temporalio/common';
import type { WorkflowInterceptors } from '@temporalio/workflow';

export const REQUEST_ID_HEADER = 'request-id';

/** The request that most recently reached this workflow (a log hint, not a decision input). */
let current: string | undefined;

function take(headers: Headers | undefined): void {
  const p = headers?.[REQUEST_ID_HEADER];
  if (p) current = defaultPayloadConverter.fromPayload<string>(p);
}

function withHeader(headers: Headers): Headers {
  return current ? { ...headers, [REQUEST_ID_HEADER]: defaultPayloadConverter.toPayload(current) } : headers;
}

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [
    {
      execute: (input, next) => {
        take(input.headers);
        return next(input);
      },
      handleSignal: (input, next) => {
        take(input.headers);
        return next(input);
      },
      validateUpdate: (input, next) => {
        take(input.headers);
        return next(input);
      },
      handleUpdate: (input, next) => {
        take(input.headers);
        return next(input);
      },
    },
  ],
  outbound: [
    {
      scheduleActivity: (input, next) => next({ ...input, headers: withHeader(input.headers) }),
      scheduleLocalActivity: (input, next) => next({ ...input, headers: withHeader(input.headers) }),
      getLogAttributes: (input, next) => next(current ? { ...input, requestId: current } : input),
    },
  ],
});
