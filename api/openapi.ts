/**
 * The OpenAPI 3.1 document (openapi/openapi.yaml) is the contract: served at /openapi.json, browsable
 * at /docs (Swagger UI from the swagger-ui-dist package, no CDN), and enforced on every request; under
 * test every response is validated too, so a response that breaks the contract fails the tests.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { parse as parseYaml } from 'yaml';
import { memoisePathPatterns } from './route-pattern-cache';

const DOC_PATH = path.resolve(__dirname, '..', 'openapi', 'openapi.yaml');
let cached: Record<string, unknown> | undefined;

export function openapiDocument(): Record<string, unknown> {
  cached ??= parseYaml(readFileSync(DOC_PATH, 'utf8')) as Record<string, unknown>;
  return cached;
}

export function docsRoutes(): Router {
  const r = Router();
  r.get('/openapi.json', (_req, res) => {
    res.json(openapiDocument());
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const assets: string = require('swagger-ui-dist').getAbsoluteFSPath();
  r.use('/docs/assets', express.static(assets, { index: false }));
  r.get('/docs/init.js', (_req, res) => {
    res.type('application/javascript').send("window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });\n");
  });
  r.get('/docs', (_req, res) => {
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shaoxing training vouchers API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`);
  });
  return r;
}

/** Request validation always; response validation when `validateResponses` (tests). */
export function contractValidator(validateResponses: boolean) {
  // The validator finds each request's operation by compiling path patterns anew: remember them.
  memoisePathPatterns();
  return OpenApiValidator.middleware({
    apiSpec: openapiDocument() as never,
    validateRequests: { allowUnknownQueryParameters: false },
    validateResponses: validateResponses ? { onError: (err: Error, body: unknown, req: { method: string; originalUrl: string }) => {
      // Throwing here turns the response into a 500: the test that caused it fails.
      throw new Error(`response breaks the contract on ${req.method} ${req.originalUrl}: ${err.message} — body ${JSON.stringify(body).slice(0, 500)}`);
    } } : false,
    validateSecurity: false, // authentication is ours (api/auth.ts): 401/403 before the contract
    ignoreUndocumented: false, // every route is in the contract; an undocumented one answers 404 (test/openapi.test.ts)
  });
}
