/**
 * Figure 3's load generator for the bare side: a Temporal client (the SDK's standard `Connection`,
 * as the bench's own client, with the same payload codec) in a process of its own, so that neither
 * side's load shares an event loop with the bench's worker — the API side's comes from autocannon in a
 * process of its own (bench/autocannon-process.ts). Settings come from the parent in
 * BENCH_SIGNAL_CONFIG (JSON); the process answers on its IPC channel:
 *   → { ready: true }                                     once connected
 *   ← { clients, minutes, targets: [{ workflowId, sessionId }] }
 *   → { latencies, first, steady, ms, errors }            one signal(checkIn) per target, `clients` closed loops
 *   ← 'stop'                                              closes the connection and exits
 */
import { Client, Connection } from '@temporalio/client';
import { dataConverter, parseCodecKeys } from '../lib/codec';
import { checkInSignal } from '../workflows/voucher/messages';
import { closedLoop } from './load';

export interface SignalProcessConfig {
  temporalAddress: string;
  /** The `TEMPORAL_CODEC_KEYS` form (`id:hex,…`). */
  codecKeys: string;
}

export interface SignalRound {
  clients: number;
  minutes: number;
  targets: { workflowId: string; sessionId: string }[];
}

/** One round: `clients` closed loops, one signal(checkIn) per target. */
export function runSignalRound(client: Client, r: SignalRound) {
  return closedLoop(r.targets.length, r.clients, async (i) => {
    const t = r.targets[i]!;
    await client.workflow.getHandle(t.workflowId).signal(checkInSignal, { sessionId: t.sessionId, verifiedMinutes: r.minutes, at: Date.now() });
  });
}

async function main(): Promise<void> {
  const c = JSON.parse(process.env.BENCH_SIGNAL_CONFIG ?? '') as SignalProcessConfig;
  const connection = await Connection.connect({ address: c.temporalAddress });
  const client = new Client({ connection, namespace: 'default', dataConverter: dataConverter(parseCodecKeys(c.codecKeys)) });
  process.on('message', (m: SignalRound | 'stop') => {
    if (m === 'stop') {
      void connection.close().finally(() => process.exit(0));
      return;
    }
    void runSignalRound(client, m).then((r) => process.send!(r));
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true });
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
