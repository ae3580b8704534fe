import type { Client } from '@temporalio/client';
import { createApp } from '../../api/app';
import { createPrincipal, type Role } from '../../api/auth';
import type { Db } from '../../db/connection';
import { createLogger } from '../../lib/logger';
import { testPii } from './env';

export function testApp(db: Db, client: Client, taskQueue: string, now?: () => number) {
  return createApp({ db, client, pii: testPii, logger: createLogger('silent'), taskQueue, now });
}

export async function keyFor(db: Db, role: Role, scope: { district?: string; institutionId?: string; personRef?: string } = {}): Promise<string> {
  return (await createPrincipal(db, { role, ...scope })).key;
}

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
