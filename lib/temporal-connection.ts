/** Connections to Temporal for the API (client) and the worker (native), with the same address rules. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { dataConverter, type CodecKeys } from './codec';
import { requestIdClientInterceptor } from './request-id';

export async function connectClient(address: string, namespace: string, codecKeys: CodecKeys): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace, dataConverter: dataConverter(codecKeys), interceptors: { workflow: [requestIdClientInterceptor] } });
}

export async function connectNative(address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address });
}
