/**
 * Authenticated principals, cached per API process so that a request does not look its key up in
 * PostgreSQL every time (docs/PERFORMANCE.md figure 3).
 *
 * Revocation stays immediate: PostgreSQL announces every change to `principals` on the
 * `principals_changed` channel (trigger of migration 010: revocation, rotation, a hand edit), and this
 * process LISTENs on its own connection and drops the principal's entries when it hears one. Nothing is
 * cached unless that connection is listening: before it is up, after it drops (everything cached is
 * forgotten then) and while it reconnects, every request goes to the database. An entry also expires
 * after `ttlMs`. A lookup that was in flight when any change was announced is not cached (the
 * generation counter), so a row read just before a revocation cannot outlive it here.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Principal } from './auth';

interface PgConnection {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', f: (m: { channel: string; payload?: string }) => void): void;
  on(event: 'error' | 'end', f: (e?: Error) => void): void;
  removeAllListeners(): void;
}

export interface PrincipalCacheOptions {
  /** How long an entry may be used (default 60 s). */
  ttlMs?: number;
  /** Delay before listening again after the connection dropped (default 1 s). */
  reconnectMs?: number;
  now?: () => number;
}

export class PrincipalCache {
  private readonly entries = new Map<string, { principal: Principal; at: number }>();
  private conn: PgConnection | undefined;
  private listening = false;
  private stopped = false;
  private generation = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly ttlMs: number;
  private readonly reconnectMs: number;
  private readonly now: () => number;

  constructor(
    private readonly db: Knex,
    private readonly logger?: Logger,
    o: PrincipalCacheOptions = {},
  ) {
    this.ttlMs = o.ttlMs ?? 60_000;
    this.reconnectMs = o.reconnectMs ?? 1_000;
    this.now = o.now ?? Date.now;
  }

  /** Starts listening (resolves once listening, or after a failed attempt that will be retried). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.listen();
  }

  /** True while changes are heard, i.e. while entries are kept and used. */
  get active(): boolean {
    return this.listening;
  }

  /** The state of lookups: pass it back to `set`, which keeps the result only if nothing changed since. */
  ticket(): number {
    return this.generation;
  }

  get(keyHash: string): Principal | undefined {
    if (!this.listening) return undefined;
    const e = this.entries.get(keyHash);
    if (!e) return undefined;
    if (this.now() - e.at >= this.ttlMs) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return e.principal;
  }

  set(keyHash: string, principal: Principal, ticket: number): void {
    if (!this.listening || ticket !== this.generation) return;
    this.entries.set(keyHash, { principal, at: this.now() });
  }

  /** Drops the entries of one principal (or all, without an id). */
  invalidate(principalId?: string): void {
    this.generation += 1;
    if (principalId === undefined) {
      this.entries.clear();
      return;
    }
    for (const [k, e] of this.entries) if (e.principal.id === principalId) this.entries.delete(k);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.drop();
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    const client = this.db.client as { acquireRawConnection(): Promise<PgConnection> };
    try {
      const conn = await client.acquireRawConnection();
      if (this.stopped) {
        this.destroy(conn);
        return;
      }
      this.conn = conn;
      conn.on('notification', (m) => {
        if (m.channel === 'principals_changed') this.invalidate(m.payload || undefined);
      });
      const lost = (e?: Error) => {
        if (this.conn !== conn) return;
        this.logger?.warn({ err: e }, 'principal cache: lost the LISTEN connection; looking every key up until it is back');
        this.drop();
        this.scheduleRetry();
      };
      conn.on('error', lost);
      conn.on('end', lost);
      await conn.query('LISTEN principals_changed');
      // Anything cached before (there is nothing: entries are only kept while listening) is forgotten.
      this.invalidate();
      this.listening = true;
    } catch (e) {
      this.logger?.warn({ err: e }, 'principal cache: cannot LISTEN; looking every key up');
      this.drop();
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.listen();
    }, this.reconnectMs);
    this.retry.unref();
  }

  private drop(): void {
    this.listening = false;
    this.invalidate();
    const conn = this.conn;
    this.conn = undefined;
    if (conn) this.destroy(conn);
  }

  private destroy(conn: PgConnection): void {
    conn.removeAllListeners();
    conn.on('error', () => undefined); // a late socket error must not crash the process
    const client = this.db.client as { destroyRawConnection(c: PgConnection): Promise<void> };
    client.destroyRawConnection(conn).catch(() => undefined);
  }
}
