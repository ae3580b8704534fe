/** Connections to Temporal for the API (client) and the worker (native), with the same address rules. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';

export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace });
}

export async function connectNative(address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address });
}
