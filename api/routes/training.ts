/** Routes of the training area (authenticated; mounted under /v1). */
import { Router } from 'express';
import type { ApiDeps } from '../http';

export function trainingRoutes(_deps: ApiDeps): Router {
  const r = Router();
  return r;
}
