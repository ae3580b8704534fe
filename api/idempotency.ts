/**
 * `Idempotency-Key` on POST/PUT/PATCH: the same key with the same request returns the first answer and
 * changes nothing; the same key with another request is refused (409). Keys are per principal. While
 * the first request is still running, a repeat gets 409 IDEMPOTENCY_IN_PROGRESS rather than a second run.
 */
import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Db } from '../db/connection';
import { Problem } from './problem';

/**
 * An ID derived from a request's `Idempotency-Key`: the same principal, key and kind give the same ID (a
 * UUID in form, version 8), so a rerun of that request (after a 5xx, or when its first run was
 * abandoned) names the same strike, or the same workflow Update, instead of a second one.
 */
export function keyedId(kind: string, principalId: string, idempotencyKey: string): string {
  const h = createHash('sha256').update(`${kind}\n${principalId}\n${idempotencyKey}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** `keyedId` for this request's `Idempotency-Key` and principal, or undefined for a request without a key. */
export function keyedIdFor(kind: string, req: Request): string | undefined {
  const key = req.get('idempotency-key');
  return key ? keyedId(kind, req.principal!.id, key) : undefined;
}

/** After this long a first request that recorded no answer counts as abandoned (longer than any request runs). */
export const IN_PROGRESS_TTL_MS = 5 * 60_000;

export function idempotency(db: Db) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const key = req.get('idempotency-key');
    if (!key || !['POST', 'PUT', 'PATCH'].includes(req.method)) return next();
    try {
      if (key.length > 200) throw new Problem(400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key is at most 200 characters');
      const principal = req.principal!.id;
      const hash = createHash('sha256')
        .update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}\n${typeof req.body === 'string' ? req.body : ''}`)
        .digest('hex');
      const inserted = await db('idempotency_keys').insert({ principal_id: principal, key, request_hash: hash }).onConflict(['principal_id', 'key']).ignore().returning('key');
      if (inserted.length === 0) {
        const prior = await db('idempotency_keys').where({ principal_id: principal, key }).first();
        if (prior.request_hash !== hash) throw new Problem(409, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with another request');
        if (prior.status === null) {
          // A first request that never recorded its answer (its process died, or the database went away
          // before the answer could be stored) must not block the key for ever: once it is older than any
          // request can run, one retry takes the key over (atomically) and runs again. The routes behind
          // it are idempotent by their own keys, so a rerun changes nothing that the first did.
          const abandoned = Date.now() - new Date(prior.created_at).getTime() > IN_PROGRESS_TTL_MS;
          const took = abandoned
            ? await db('idempotency_keys').where({ principal_id: principal, key, created_at: prior.created_at }).whereNull('status').update({ created_at: db.fn.now() }).returning('key')
            : [];
          if (!took.length) throw new Problem(409, 'IDEMPOTENCY_IN_PROGRESS', 'the first request with this key is still running');
        } else {
          res.setHeader('Idempotent-Replayed', 'true');
          if (prior.location) res.setHeader('Location', prior.location);
          res.status(prior.status).type(prior.status >= 400 ? 'application/problem+json' : 'application/json').send(JSON.stringify(prior.body));
          return;
        }
      }
      // Capture the first answer.
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        const status = res.statusCode;
        const done =
          status >= 500
            ? db('idempotency_keys').where({ principal_id: principal, key }).del() // let a retry run again
            : db('idempotency_keys')
                .where({ principal_id: principal, key })
                .update({ status, body: JSON.stringify(body), location: (res.getHeader('location') as string | undefined) ?? null });
        done.then(
          () => json(body),
          () => {
            // Recording the answer failed (the database went away mid-request): send the answer anyway.
            // Handing the error to next() here reached Express's default HTML error page (the router
            // has already moved past this request's handlers): a done request told "500". The key
            // stays "in progress" (test/idempotency-outage.test.ts).
            res.json = json;
            json(body);
          },
        );
        return res;
      };
      next();
    } catch (e) {
      next(e);
    }
  };
}
