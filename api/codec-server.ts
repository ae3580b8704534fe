/**
 * Codec server for the Temporal Web UI and CLI (`--codec-endpoint`): decodes (and encodes) payloads
 * for an authenticated operator only. CORS admits the configured UI origin and no other; without a
 * valid operator key the UI keeps showing ciphertext.
 */
import type { PrincipalCache } from './principal-cache';
import express, { Router } from 'express';
import type { Payload } from '@temporalio/common';
import type { Db } from '../db/connection';
import { AesGcmCodec, type CodecKeys } from '../lib/codec';
import { authenticate, requireRole } from './auth';
import { asyncRoute } from './http';
import { Problem } from './problem';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

export function codecRoutes(deps: { db: Db; codecKeys: CodecKeys; uiOrigin: string; principalCache?: PrincipalCache }): Router {
  const codec = new AesGcmCodec(deps.codecKeys);
  const r = Router();
  r.use((req, res, next) => {
    const origin = req.get('origin');
    if (origin && origin === deps.uiOrigin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Namespace');
    }
    if (req.method === 'OPTIONS') {
      res.status(origin === deps.uiOrigin ? 204 : 403).end();
      return;
    }
    next();
  });
  r.use(express.json({ limit: '4mb' }));
  r.use(authenticate(deps.db, deps.principalCache), requireRole('operator'));
  const handler = (op: 'encode' | 'decode') =>
    asyncRoute(async (req, res) => {
      const payloads = (req.body as { payloads?: JsonPayload[] })?.payloads;
      if (!Array.isArray(payloads)) throw new Problem(400, 'INVALID_REQUEST', 'body must be {"payloads": [...]}');
      try {
        const out = await codec[op](payloads.map(fromJson));
        res.json({ payloads: out.map(toJson) });
      } catch (e) {
        throw new Problem(400, 'UNDECODABLE_PAYLOAD', (e as Error).message);
      }
    });
  r.post('/encode', handler('encode'));
  r.post('/decode', handler('decode'));
  return r;
}
