/** Routes of the issuance area (authenticated; mounted under /v1). */
import { Router } from 'express';
import type { ApiDeps } from '../http';

export function issuanceRoutes(_deps: ApiDeps): Router {
  const r = Router();
  return r;
}
