/** API process entry point (`npx tsx api/main.ts`): needs DATABASE_URL and TEMPORAL_ADDRESS. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { API_DB_OPTIONS, createDb } from '../db/connection';
import { loadConfig } from '../lib/config';
import { createLogger } from '../lib/logger';
import { parseCodecKeys, type CodecKeys } from '../lib/codec';
import { Pii } from '../lib/pii';
import { connectClient } from '../lib/temporal-connection';
import { createApp } from './app';
import { PrincipalCache } from './principal-cache';

export interface ApiOptions {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  port: number;
  personRefKey: string;
  piiKey: string;
  codecKeys: CodecKeys;
  temporalUiOrigin: string;
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
  const app = createApp({ db, client, pii: new Pii(opts), logger, codecKeys: opts.codecKeys, temporalUiOrigin: opts.temporalUiOrigin, principalCache });
  const server = app.listen(opts.port, () => logger.info({ port: opts.port }, 'API listening'));
  return {
    server,
    async stop() {
      await new Promise<void>((r) => server.close(() => r()));
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
  }).then((api) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void api.stop().then(() => process.exit(0)));
  });
}
