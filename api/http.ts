/** Small shared helpers for route modules: async handlers and zod parsing into problem+json. */
import type { NextFunction, Request, Response } from 'express';
import type { Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { z as zod, type z } from 'zod';
import type { Db } from '../db/connection';
import type { Logger } from '../lib/logger';
import type { CodecKeys } from '../lib/codec';
import type { Pii } from '../lib/pii';
import type { PrincipalCache } from './principal-cache';
import { Problem } from './problem';

export interface ApiDeps {
  db: Db;
  client: Client;
  pii: Pii;
  logger: Logger;
  /** Task queue of voucher workflows (tests use their own). */
  taskQueue?: string;
  /** Clock for "now"; tests may pin it. */
  now?: () => number;
  /** Payload codec keys, for the codec endpoint the Temporal Web UI calls (absent: no endpoint). */
  codecKeys?: CodecKeys;
  /** Validate every response against the OpenAPI contract (default: under test). */
  validateResponses?: boolean;
  /** Requests per principal per minute (default 600). */
  rateLimitPerMinute?: number;
  /** The Web UI origin allowed to call the codec endpoint. */
  temporalUiOrigin?: string;
  /** Cache of authenticated principals, kept true by PostgreSQL notifications (absent: every request looks its key up). */
  principalCache?: PrincipalCache;
  /** How long an audit row may wait to be written in a batch (default 25 ms; api/ops.ts `auditLog`). */
  auditFlushMs?: number;
}

export const asyncRoute =
  (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => {
    // The matched route pattern, for metrics (error handlers run after Express has left the router).
    if (req.route?.path) res.locals.route = `${req.baseUrl}${req.route.path}`;
    fn(req, res).catch(next);
  };

/** PostgreSQL text cannot hold NUL: any NUL in a parsed body or query is refused with a 400. */
export function hasNul(v: unknown): boolean {
  return typeof v === 'string'
    ? v.includes('\u0000')
    : Array.isArray(v)
      ? v.some(hasNul)
      : !!v && typeof v === 'object' && Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
}

/**
 * A real calendar date `YYYY-MM-DD` in 1900–9999 (catalogue validity, certificates, statistics ranges):
 * a day the month lacks, or a year PostgreSQL or a four-digit answer cannot carry, is a 400, not a 500.
 */
export function isLocalDate(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1900 || mo < 1 || mo > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(2000, mo, 0)).getUTCDate() - (mo === 2 && !(y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) ? 1 : 0);
}

export function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    throw new Problem(400, 'INVALID_REQUEST', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '), null, {
      errors: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return r.data;
}

/** Query parameters of a cursor-paginated list: a page of 1–100 (default 50) after `cursor`. */
export const PAGE_PARAMS = {
  limit: zod.coerce.number().int().min(1).max(100).default(50),
  cursor: zod.string().max(300).optional(),
};

/**
 * One page of `rows` in the order of `key` (columns that together are unique), after the cursor the
 * previous page gave out: keyset pagination, so a page costs the same however deep it is and rows
 * added meanwhile are neither skipped nor repeated. The cursor is the last row's key, base64url JSON.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rows are database rows
export async function keysetPage<T extends Record<string, unknown> = Record<string, any>>(
  rows: Knex.QueryBuilder,
  key: string[],
  page: { limit: number; cursor?: string },
  direction: 'asc' | 'desc' = 'asc',
): Promise<{ rows: T[]; nextCursor: string | null }> {
  let q = rows.clone(); // the caller's builder stays as it was (e.g. for a total over every page)
  if (page.cursor) {
    let after: unknown;
    try {
      after = JSON.parse(Buffer.from(page.cursor, 'base64url').toString('utf8'));
    } catch {
      after = undefined;
    }
    if (!Array.isArray(after) || after.length !== key.length || !after.every((v) => typeof v === 'string' || typeof v === 'number')) {
      throw new Problem(400, 'INVALID_CURSOR', 'not a cursor this list gave out');
    }
    q = q.whereRaw(`(${key.map(() => '??').join(', ')}) ${direction === 'asc' ? '>' : '<'} (${key.map(() => '?').join(', ')})`, [...key, ...after]);
  }
  const got: T[] = await q.orderBy(key.map((column) => ({ column, order: direction }))).limit(page.limit + 1);
  const shown = got.slice(0, page.limit);
  const last = shown[shown.length - 1];
  const nextCursor =
    got.length > page.limit && last
      ? Buffer.from(JSON.stringify(key.map((k) => (last[k] instanceof Date ? (last[k] as Date).toISOString() : last[k])))).toString('base64url')
      : null;
  return { rows: shown, nextCursor };
}
