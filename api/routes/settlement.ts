/** Routes of the settlement area (authenticated; mounted under /v1). */
import { Router } from 'express';
import type { ApiDeps } from '../http';

export function settlementRoutes(_deps: ApiDeps): Router {
  const r = Router();
  return r;
}
