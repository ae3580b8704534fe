/** Small shared helpers for route modules: async handlers and zod parsing into problem+json. */
import type { NextFunction, Request, Response } from 'express';
import type { Client } from '@temporalio/client';
import type { z } from 'zod';
import type { Db } from '../db/connection';
import type { Logger } from '../lib/logger';
import type { CodecKeys } from '../lib/codec';
import type { Pii } from '../lib/pii';
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
