import { rmSync } from 'node:fs';
import { dropDatabase, type RunningPostgres } from '../../lib/postgres';

export default async function globalTeardown(): Promise<void> {
  const g = globalThis as Record<string, unknown>;
  const db = g.__TEST_DB__ as { serverUrl: string; dbName: string } | undefined;
  if (db) await dropDatabase(db.serverUrl, db.dbName).catch((e) => console.error('drop test database failed', e));
  const emb = g.__EMBEDDED_PG__ as { pg: RunningPostgres; dir: string } | undefined;
  if (emb) {
    await emb.pg.stop();
    rmSync(emb.dir, { recursive: true, force: true });
  }
  const bundle = g.__TEST_BUNDLE__ as string | undefined;
  if (bundle) rmSync(bundle, { force: true });
}
