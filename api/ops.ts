/**
 * What operators see of the API: security headers, request IDs in structured logs, per-principal rate
 * limits, Prometheus metrics, health and readiness, and an audit row for every state-changing request.
 */
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { rateLimit } from 'express-rate-limit';
import pinoHttp from 'pino-http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/connection';
import type { Logger } from '../lib/logger';

export const securityHeaders = () => helmet();

export function requestLogs(logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: (req, res) => res.getHeader('x-request-id') as string,
    customProps: (req) => ({ principal: (req as Request).principal?.id }),
    serializers: { req: (r: { id: string; method: string; url: string }) => ({ id: r.id, method: r.method, url: r.url.split('?')[0] }) },
  });
}

/** Per principal (after authentication): a fixed window of `perMinute` requests. */
export function perPrincipalLimit(perMinute: number) {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => (req as Request).principal?.id ?? 'anonymous',
    handler: (_req, res) => {
      res.status(429).type('application/problem+json').json({
        type: 'https://vouchers.shaoxing.example/problems/rate-limited',
        title: 'Too many requests',
        status: 429,
        code: 'RATE_LIMITED',
      });
    },
  });
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'api_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'api_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route', 'method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const middleware = (req: Request, res: Response, next: NextFunction) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      // The matched route pattern (never the raw path: voucher numbers would explode the label set).
      const route = (res.locals.route as string | undefined) ?? (req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched');
      end({ route, method: req.method });
      requests.inc({ route, method: req.method, status: String(res.statusCode) });
    });
    next();
  };
  return { registry, middleware };
}

/**
 * The drain of every audit log of the process (one per app). `drainAuditLogs` writes their buffered
 * rows and waits for writes in flight: the API calls it on shutdown after the server has stopped
 * answering and before its pool is destroyed, so a row buffered in that moment is written rather than
 * lost (or raced against the pool's destruction).
 */
const auditLogDrains = new Set<() => Promise<void>>();

export async function drainAuditLogs(): Promise<void> {
  await Promise.all([...auditLogDrains].map((drain) => drain()));
}

/**
 * Every state-changing request is recorded after its answer: who, what, the outcome and the problem
 * code. Rows are written in batches — at most every `flushMs` (25 ms) or `maxRows` (200) rows, one
 * INSERT each — rather than one INSERT per request (docs/PERFORMANCE.md figure 3). As before batching,
 * the row is written after the answer is sent, so a process that dies in that moment loses it; the
 * window is now up to 25 ms instead of one round trip. A process that stops in order writes them
 * first (`drainAuditLogs`).
 */
export function auditLog(db: Db, logger: Logger, o: { flushMs?: number; maxRows?: number } = {}) {
  const flushMs = o.flushMs ?? 25;
  const maxRows = o.maxRows ?? 200;
  let rows: Record<string, unknown>[] = [];
  let timer: NodeJS.Timeout | undefined;
  const writing = new Set<Promise<void>>();
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = rows;
    rows = [];
    if (batch.length === 0) return;
    const write: Promise<void> = db('audit_log')
      .insert(batch)
      .then(
        () => undefined,
        (err: unknown) => logger.error({ err, rows: batch.length }, 'audit log write failed'),
      )
      .finally(() => writing.delete(write));
    writing.add(write);
  };
  auditLogDrains.add(async () => {
    flush();
    await Promise.all([...writing]);
  });
  return (req: Request, res: Response, next: NextFunction) => {
    if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) return next();
    res.on('finish', () => {
      const status = res.statusCode;
      rows.push({
        at: new Date(), // when answered, not when the batch is written
        principal_id: req.principal?.id ?? null,
        role: req.principal?.role ?? null,
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status,
        outcome: status < 400 ? 'ok' : status < 500 ? 'refused' : 'error',
        request_id: String(res.getHeader('x-request-id') ?? ''),
        problem_code: (res.locals.problemCode as string | undefined) ?? null,
      });
      if (rows.length >= maxRows) flush();
      else timer ??= setTimeout(flush, flushMs);
    });
    next();
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/** Readiness: PostgreSQL and Temporal both answer within 2 s; otherwise 503 with Retry-After. */
export function readiness(db: Db, client: Client) {
  return async (_req: Request, res: Response) => {
    const checks: Record<string, string> = {};
    await Promise.all([
      withTimeout(db.raw('select 1'), 2000).then(() => (checks.postgres = 'ok'), (e) => (checks.postgres = String((e as Error).message))),
      withTimeout(client.workflowService.getSystemInfo({}), 2000).then(() => (checks.temporal = 'ok'), (e) => (checks.temporal = String((e as Error).message))),
    ]);
    const ready = checks.postgres === 'ok' && checks.temporal === 'ok';
    if (!ready) res.setHeader('Retry-After', '5');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks });
  };
}
