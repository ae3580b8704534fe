/**
 * Figure 3's load generator for the API side, in a process of its own (as autocannon or wrk would be
 * run against a deployment): `clients` closed loops (bench/load.ts) over one keep-alive agent whose
 * sockets stay open from round to round, so every timed check-in goes out on an open connection, as
 * the bare side's signals go out on an open gRPC channel. Why not autocannon, tried on 2026-12-03: it
 * opens its connections anew on every run, and a saturated Node server leaves part of such a burst
 * unaccepted for seconds, so the API saw fewer than `clients` requests in flight
 * (bench/results/accept-delay/).
 *
 * IPC (the parent is bench/api-overhead.ts):
 *   ← HttpRound
 *   → HttpRoundResult
 *   ← 'stop'            closes the sockets and exits
 */
import type http from 'node:http';
import { closedLoop, httpRequest, keepAliveAgent } from './load';

export interface HttpRound {
  port: number;
  clients: number;
  requests: { path: string; authorization: string; body: string }[];
}

export type HttpRoundResult = Awaited<ReturnType<typeof closedLoop>> & {
  statuses: Record<string, number>;
  /** Answers whose body says the check-in was counted (`{"counted":true}`). */
  counted: number;
};

/** One round: `clients` closed loops over `agent`, one check-in per request. */
export async function runHttpRound(agent: http.Agent, r: HttpRound): Promise<HttpRoundResult> {
  const statuses: Record<string, number> = {};
  let counted = 0;
  const loop = await closedLoop(r.requests.length, r.clients, async (i) => {
    const q = r.requests[i]!;
    const res = await httpRequest(agent, r.port, { method: 'POST', path: q.path, headers: { authorization: q.authorization }, body: q.body });
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 160)}`);
    if ((JSON.parse(res.body) as { counted: boolean }).counted) counted++;
  });
  return { ...loop, statuses, counted };
}

if (require.main === module) {
  let agent: http.Agent | undefined;
  process.on('message', (m: HttpRound | 'stop') => {
    if (m === 'stop') {
      agent?.destroy();
      process.exit(0);
    }
    agent ??= keepAliveAgent(m.clients);
    void runHttpRound(agent, m).then((res) => process.send!(res));
  });
  process.on('disconnect', () => process.exit(0));
}
