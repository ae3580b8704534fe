/** API process entry point (`npx tsx api/main.ts`): needs DATABASE_URL and TEMPORAL_ADDRESS. */
import type http from 'node:http';
import type { Express } from 'express';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { API_DB_OPTIONS, createDb } from '../db/connection';
import { loadConfig } from '../lib/config';
import { createLogger } from '../lib/logger';
import { parseCodecKeys, type CodecKeys } from '../lib/codec';
import { Pii } from '../lib/pii';
import { connectClient } from '../lib/temporal-connection';
import { createApp } from './app';
import { PrincipalCache } from './principal-cache';
import { drainAuditLogs } from './ops';

export interface ApiOptions {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  port: number;
  personRefKey: string;
  piiKey: string;
  codecKeys: CodecKeys;
  temporalUiOrigin: string;
  /** Idle keep-alive connections are closed after this (lib/config.ts `apiKeepAliveTimeoutMs`). */
  keepAliveTimeoutMs: number;
  /** How long an audit row may wait to be written in a batch (default 25 ms). */
  auditFlushMs?: number;
}

/**
 * Listens with the connection timeout a deployment behind a proxy needs: idle keep-alive connections
 * stay open `keepAliveTimeoutMs`. Node's default (5 s) is shorter than any proxy's upstream idle
 * timeout, so the API would close connections the proxy is about to reuse, and the proxy would answer
 * 502 to the request it had just sent on one. The headers timeout stays above it, as proxies' guides
 * advise, and the request timeout (Node's 300 s) above both.
 */
export async function listenApi(app: Express, port: number, keepAliveTimeoutMs: number, host?: string): Promise<http.Server> {
  if (!Number.isInteger(keepAliveTimeoutMs) || keepAliveTimeoutMs <= 0 || keepAliveTimeoutMs >= 290_000) {
    throw new Error(`API keep-alive timeout must be a whole number of milliseconds in (0, 290000), got ${keepAliveTimeoutMs}`);
  }
  return new Promise((resolve, reject) => {
    const server = host === undefined ? app.listen(port) : app.listen(port, host);
    server.keepAliveTimeout = keepAliveTimeoutMs;
    server.headersTimeout = keepAliveTimeoutMs + 1_000;
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}

export async function startApi(opts: ApiOptions) {
  const logger = createLogger(undefined, 'api');
  const db = createDb(opts.databaseUrl, API_DB_OPTIONS);
  const client = await connectClient(opts.temporalAddress, opts.namespace, opts.codecKeys, {
    opened: () => logger.warn({ event: 'temporal_unreachable' }, 'Temporal is unreachable: workflow calls answer 503 at once until it answers again'),
    closed: (openMs) => logger.info({ event: 'temporal_reachable', openMs }, 'Temporal answers again'),
  });
  // Known API keys skip the database lookup; revocations reach the cache by LISTEN/NOTIFY at once.
  const principalCache = new PrincipalCache(db, logger);
  await principalCache.start();
  const app = createApp({ db, client, pii: new Pii(opts), logger, codecKeys: opts.codecKeys, temporalUiOrigin: opts.temporalUiOrigin, principalCache, auditFlushMs: opts.auditFlushMs });
  const server = await listenApi(app, opts.port, opts.keepAliveTimeoutMs);
  logger.info({ port: opts.port, keepAliveTimeoutMs: server.keepAliveTimeout }, 'API listening');
  return {
    server,
    async stop() {
      await new Promise<void>((r) => server.close(() => r()));
      await drainAuditLogs(); // the answered requests' audit rows, before the pool goes
      await principalCache.stop();
      await client.connection.close();
      await db.destroy();
    },
  };
}

if (require.main === module) {
  const c = loadConfig();
  if (!c.databaseUrl || !c.temporalAddress) {
    console.error('DATABASE_URL and TEMPORAL_ADDRESS must be set (or use `npm start`)');
    process.exit(2);
  }
  // The client's native connection logs through the SDK runtime: warnings and errors into the API's JSON log.
  const runtimeLog = createLogger(undefined, 'temporal-client');
  Runtime.install({
    logger: new DefaultLogger('WARN', (e) => (e.level === 'ERROR' ? runtimeLog.error(e.meta ?? {}, e.message) : runtimeLog.warn(e.meta ?? {}, e.message))),
  });
  startApi({
    databaseUrl: c.databaseUrl,
    temporalAddress: c.temporalAddress,
    namespace: c.temporalNamespace,
    port: c.apiPort,
    personRefKey: c.personRefKey,
    piiKey: c.piiKey,
    codecKeys: parseCodecKeys(c.codecKeys, c.codecKeyId),
    temporalUiOrigin: c.temporalUiOrigin,
    keepAliveTimeoutMs: c.apiKeepAliveTimeoutMs,
  }).then((api) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void api.stop().then(() => process.exit(0)));
  });
}
