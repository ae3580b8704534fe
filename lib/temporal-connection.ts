/** Connections to Temporal for the API (client) and the worker (native), with the same address rules. */
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { dataConverter, type CodecKeys } from './codec';
import { requestIdClientInterceptor } from './request-id';

/**
 * Attempts per gRPC call of the API's client. The SDK's default (10 attempts, backoff from 100 ms ×1.7
 * up to 5 s) keeps a request waiting ≈ 15–20 s before a Temporal that is down becomes the API's 503
 * (measured in test/drill-dev-server-restart.test.ts). A request has a person waiting behind it: six
 * attempts (backoff ≈ 0.17 + 0.29 + 0.49 + 0.84 + 1.42 s, ±20 % jitter) still ride out a blip of
 * about three seconds and answer 503 + Retry-After within about four when the server is away.
 * `RESOURCE_EXHAUSTED` keeps the SDK's longer backoff (from 1 s). The worker is not affected: it
 * uses a native connection with its own retries.
 */
export const API_GRPC_ATTEMPTS = 6;

export async function connectClient(address: string, namespace: string, codecKeys: CodecKeys): Promise<Client> {
  const connection = await Connection.connect({ address, interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: API_GRPC_ATTEMPTS }))] });
  return new Client({ connection, namespace, dataConverter: dataConverter(codecKeys), interceptors: { workflow: [requestIdClientInterceptor] } });
}

export async function connectNative(address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address });
}
