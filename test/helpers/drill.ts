/**
 * Shared pieces of the resilience drills (test/drill-*.test.ts): a database of the drill's own, a
 * Temporal dev server process on a persistent SQLite file that can be stopped and started again, a
 * TCP proxy in front of PostgreSQL that can refuse connections, and what a voucher's outcome is.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { Connection, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Db, DbOptions } from '../../db/connection';
import { registerSearchAttributes } from '../../lib/search-attributes';
import { VOUCHER_TASK_QUEUE, type VoucherSnapshot } from '../../workflows/voucher/contract';

/**
 * Drills make the SDK warn on purpose (failed polls, failed activities, long workflow tasks) and knex
 * log every refused connection: keep errors only, so a drill's output shows what matters.
 */
export function quietDrill(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  } catch {
    /* installed already in this jest worker */
  }
  const log = console.log.bind(console);
  console.log = (...a: unknown[]) => {
    if (typeof a[0] === 'string' && /^Acquire connection error|^Connection Error/.test(a[0])) return;
    log(...a);
  };
}

export { ownDatabase, type OwnDatabase } from './env';


/** A port outside the kernel's ephemeral range (32768–60999), free now, so it can be reused after a restart. */
export async function fixedFreePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portFree(port)) return port;
  }
  throw new Error('no free port in 20000–32000');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string, every = 200): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * `temporal server start-dev` on a persistent SQLite file and a fixed port, in its own process group;
 * stop() with SIGTERM (graceful) or SIGKILL (crash), start() again on the same file and port.
 */
export class DevServer {
  private child?: ChildProcess;
  private log = '';
  readonly address: string;

  constructor(
    private readonly cli: string,
    readonly dbFile: string,
    readonly port: number,
  ) {
    this.address = `127.0.0.1:${port}`;
  }

  /** Starts the server and waits until it answers; then registers the custom search attributes. */
  async start(connection?: Connection): Promise<void> {
    const args = ['server', 'start-dev', '--db-filename', this.dbFile, '--ip', '127.0.0.1', '--port', String(this.port), '--headless', '--log-level', 'warn',
      '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'];
    const child = spawn(this.cli, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => (this.log = (this.log + b.toString()).slice(-8000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.child = child;
    const own = connection ?? (await until(() => Connection.connect({ address: this.address, connectTimeout: 1000 }), 60_000, `dev server on ${this.address}\n${this.log}`));
    try {
      await until(async () => {
        if (child.exitCode !== null) throw new Error(`dev server exited ${child.exitCode}: ${this.log}`);
        await own.workflowService.getSystemInfo({});
        await own.workflowService.describeNamespace({ namespace: 'default' });
        return true;
      }, 60_000, `dev server on ${this.address} answering`);
      await until(async () => (await registerSearchAttributes(own, 'default'), true), 30_000, 'search attributes registered');
    } finally {
      if (!connection) await own.close();
    }
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the server with `signal` and waits for the process to be gone. */
  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const c = this.child;
    if (!c || c.pid === undefined) return { code: null, signal: null };
    if (this.running) {
      const gone = new Promise<void>((r) => c.once('exit', () => r()));
      try {
        process.kill(-c.pid, signal);
      } catch {
        /* already gone */
      }
      await gone;
    }
    return { code: c.exitCode, signal: c.signalCode };
  }

  get output(): string {
    return this.log;
  }
}

/**
 * A TCP proxy in front of PostgreSQL. down() closes the listener (new connections are refused) and
 * destroys every open connection; up() listens again on the same port.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  connections = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** A proxy in front of the PostgreSQL server of `url`; `url` rewritten to go through it. */
  static async forUrl(url: string): Promise<{ proxy: TcpProxy; url: string }> {
    const u = new URL(url);
    const proxy = new TcpProxy(u.hostname || '127.0.0.1', Number(u.port || 5432));
    await proxy.up(await fixedFreePort());
    u.hostname = '127.0.0.1';
    u.port = String(proxy.port);
    return { proxy, url: u.toString() };
  }

  async up(port = this.port): Promise<void> {
    const server = net.createServer((client) => {
      this.connections += 1;
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await until(
      () =>
        new Promise<true | undefined>((resolve) => {
          server.once('error', () => resolve(undefined));
          server.listen(port, '127.0.0.1', () => resolve(true));
        }),
      10_000,
      `proxy listening on ${port}`,
      100,
    );
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** Refuses new connections and cuts every open one. */
  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const x of this.sockets) x.resetAndDestroy();
    this.sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  get isUp(): boolean {
    return !!this.server;
  }
}

/** What must not depend on a disturbance: the outcome, attendance, money. */
export function outcome(s: VoucherSnapshot) {
  return {
    status: s.status,
    attendedMinutes: s.attendedMinutes,
    totalMinutes: s.totalMinutes,
    checkInRate: s.checkInRate,
    settlement: s.settlement && {
      outcome: s.settlement.outcome,
      amountFen: s.settlement.amountFen,
      payerDistrict: s.settlement.payerDistrict,
      payeeType: s.settlement.payeeType,
      payeeRef: s.settlement.payeeRef,
      fundingSource: s.settlement.fundingSource,
      paymentRoute: s.settlement.paymentRoute,
    },
  };
}

/** Rows of the ledger and registries one voucher must have exactly once. */
export async function ledgerOf(db: Db, no: string) {
  const [decisions, disbursements, enrolments, quota, readModel] = await Promise.all([
    db('subsidy_decisions').where({ voucher_no: no }),
    db('disbursements').where({ voucher_no: no }),
    db('enrolments').where({ voucher_no: no }),
    db('activation_quota').where({ voucher_no: no }),
    db('vouchers').where({ voucher_no: no }).first(),
  ]);
  return { decisions: decisions.length, disbursements: disbursements.length, enrolments: enrolments.length, quota: quota.length, readModel };
}

export type { DbOptions };

/** The worker as deployed (`npx tsx workers/main.ts`), in its own process group, for kill drills. */
export async function spawnWorkerProcess(o: { databaseUrl: string; temporalAddress: string; codecKeys: string; env?: Record<string, string> }): Promise<ChildProcess> {
  const metricsPort = await fixedFreePort();
  const child = spawn('npx', ['tsx', 'workers/main.ts'], {
    cwd: path.resolve(__dirname, '..', '..'),
    detached: true, // its own process group: SIGKILL reaches npx, tsx and node alike
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: o.databaseUrl,
      TEMPORAL_ADDRESS: o.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_CODEC_KEYS: o.codecKeys,
      WORKER_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'warn',
      ...o.env,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (code && code !== 0) console.error(`worker process exited ${code} ${signal ?? ''}\n${stderr}`);
  });
  return child;
}

/** Sends `signal` to a child's whole process group (npx, tsx and node). */
export function killGroup(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    /* already gone */
  }
}

export async function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  await new Promise((r) => c.once('exit', r));
}

/** Distinct identities of the pollers the server has seen on the voucher task queue. */
export async function pollerIdentities(client: Client, type: 'workflow' | 'activity'): Promise<string[]> {
  const T = temporal.api.enums.v1.TaskQueueType;
  const res = await client.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: VOUCHER_TASK_QUEUE },
    taskQueueType: type === 'workflow' ? T.TASK_QUEUE_TYPE_WORKFLOW : T.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return [...new Set((res.pollers ?? []).map((p) => p.identity ?? ''))];
}

/** Waits until a poller not in `known` shows up (a worker process that has started), and returns it. */
export function newPoller(client: Client, type: 'workflow' | 'activity', known: string[]): Promise<string> {
  return until(async () => (await pollerIdentities(client, type)).find((id) => !known.includes(id)), 150_000, 'worker process polling');
}
