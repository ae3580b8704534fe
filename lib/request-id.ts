/**
 * Request IDs across processes: an AsyncLocalStorage holds the current API request's ID; the client
 * interceptor writes it into Temporal headers; the activity interceptor reads it back and attaches it
 * to activity log lines. (The workflow side is workflows/request-id-interceptors.ts.)
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { defaultPayloadConverter, type Headers } from '@temporalio/common';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { REQUEST_ID_HEADER } from '../workflows/request-id-interceptors';

export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

function withRequestId(headers: Headers): Headers {
  const id = requestContext.getStore()?.requestId;
  return id ? { ...headers, [REQUEST_ID_HEADER]: defaultPayloadConverter.toPayload(id) } : headers;
}

export const requestIdClientInterceptor: WorkflowClientInterceptor = {
  start: (input, next) => next({ ...input, headers: withRequestId(input.headers) }),
  signal: (input, next) => next({ ...input, headers: withRequestId(input.headers) }),
  signalWithStart: (input, next) => next({ ...input, headers: withRequestId(input.headers) }),
  startUpdate: (input, next) => next({ ...input, headers: withRequestId(input.headers) }),
};

export function readRequestId(headers: Headers | undefined): string | undefined {
  const p = headers?.[REQUEST_ID_HEADER];
  return p ? defaultPayloadConverter.fromPayload<string>(p) : undefined;
}

/** Activity side: the request ID from the headers is attached to every `log` line of the activity. */
export const requestIdActivityInterceptor: ActivityInterceptorsFactory = () => {
  let requestId: string | undefined;
  return {
    inbound: {
      execute: (input, next) => {
        requestId = readRequestId(input.headers);
        return next(input);
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next(requestId ? { ...input, requestId } : input),
    },
  };
};
