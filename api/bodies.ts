/**
 * Bodies that are not the ordinary JSON of at most 256 kB, read before the contract validator so that
 * the contract (and `Idempotency-Key`, which hashes the body) sees them: trainee lists (JSON or CSV up
 * to 50 MB, R2.5, read only for institution principals — anyone else gets 403 before a byte is read)
 * and bank reconciliation files (CSV up to 2 MB, R3.13). NUL characters are refused as everywhere.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { requireRole } from './auth';
import { hasNul } from './http';
import { Problem } from './problem';

type Handler = (req: Request, res: Response, next: NextFunction) => void;

const chain =
  (...handlers: Handler[]): Handler =>
  (req, res, next) => {
    const step = (i: number) => (e?: unknown) => {
      if (e) return next(e);
      if (i === handlers.length) {
        if (hasNul(req.body)) return next(new Problem(400, 'INVALID_REQUEST', 'NUL characters are not allowed'));
        return next();
      }
      handlers[i]!(req, res, step(i + 1));
    };
    step(0)();
  };

/** Mounted on the /v1 router after authentication, before the contract validator. */
export function specialBodies(): Handler {
  const traineeList = chain(requireRole('institution'), express.text({ type: ['text/csv'], limit: '50mb' }), express.json({ limit: '50mb' }));
  const reconciliation = chain(express.text({ type: ['text/csv', 'text/plain'], limit: '2mb' }));
  return (req, res, next) => {
    if (req.method !== 'POST') return next();
    if (req.path === '/trainee-lists') return traineeList(req, res, next);
    if (/^\/settlement-batches\/[^/]+\/reconciliation$/.test(req.path)) return reconciliation(req, res, next);
    next();
  };
}
