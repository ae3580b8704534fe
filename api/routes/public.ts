/** Unauthenticated, read-only routes (mounted under /v1/public). */
import { Router } from 'express';
import type { ApiDeps } from '../http';

export function publicRoutes(_deps: ApiDeps): Router {
  const r = Router();
  return r;
}
