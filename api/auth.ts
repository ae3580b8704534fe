/**
 * API keys: `vk_<id>_<secret>`, stored only as a SHA-256 hash; each maps to a principal with a role
 * and a scope (a district, an institution or a person). Keys can be rotated and revoked.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Db } from '../db/connection';
import { isShaoxingDistrict } from '../policy/districts';
import type { PrincipalCache } from './principal-cache';
import { Problem } from './problem';

export const ROLES = ['hr', 'institution', 'holder', 'finance', 'assessor', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  id: string;
  role: Role;
  district: string | null;
  institutionId: string | null;
  personRef: string | null;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export async function createPrincipal(
  db: Db,
  p: { role: Role; district?: string | null; institutionId?: string | null; personRef?: string | null; label?: string; id?: string },
): Promise<{ principal: Principal; key: string }> {
  const unscoped = unscopedReason({ role: p.role, district: p.district ?? null, institutionId: p.institutionId ?? null, personRef: p.personRef ?? null });
  if (unscoped) throw new Error(unscoped);
  const id = p.id ?? `${p.role}-${randomBytes(6).toString('hex')}`;
  const key = `vk_${id}_${randomBytes(24).toString('base64url')}`;
  await db('principals').insert({
    id,
    key_hash: hashKey(key),
    role: p.role,
    district: p.district ?? null,
    institution_id: p.institutionId ?? null,
    person_ref: p.personRef ?? null,
    label: p.label ?? null,
  });
  return { principal: { id, role: p.role, district: p.district ?? null, institutionId: p.institutionId ?? null, personRef: p.personRef ?? null }, key };
}

/** Issues a new key for a principal; the old one stops working at once. */
export async function rotateKey(db: Db, principalId: string): Promise<string> {
  const key = `vk_${principalId}_${randomBytes(24).toString('base64url')}`;
  const n = await db('principals').where({ id: principalId }).whereNull('revoked_at').update({ key_hash: hashKey(key) });
  if (n === 0) throw new Error(`no active principal ${principalId}`);
  return key;
}

export async function revokePrincipal(db: Db, principalId: string): Promise<void> {
  await db('principals').where({ id: principalId }).update({ revoked_at: db.fn.now() });
}

/** Resolves the request's API key to its principal; with a `cache`, known keys skip the lookup (api/principal-cache.ts). */
export function authenticate(db: Db, cache?: PrincipalCache) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      const header = req.get('authorization');
      const key = header?.startsWith('Bearer ') ? header.slice(7).trim() : req.get('x-api-key');
      if (!key) throw new Problem(401, 'UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>"');
      const keyHash = hashKey(key);
      let principal = cache?.get(keyHash);
      if (!principal) {
        const ticket = cache?.ticket() ?? 0;
        const row = await db('principals').where({ key_hash: keyHash }).whereNull('revoked_at').first();
        if (!row) throw new Problem(401, 'UNAUTHENTICATED', 'unknown or revoked API key');
        principal = { id: row.id, role: row.role, district: row.district, institutionId: row.institution_id, personRef: row.person_ref };
        cache?.set(keyHash, principal, ticket);
      }
      // A row edited by hand into a principal with no scope never reaches a route (which would read it as city-wide).
      const unscoped = unscopedReason(principal);
      if (unscoped) throw new Problem(403, 'FORBIDDEN_SCOPE', unscoped);
      req.principal = { ...principal };
      next();
    } catch (e) {
      next(e);
    }
  };
}

/**
 * Why a principal cannot be scoped, if it cannot: HR acts for a district, an institution for itself, a
 * holder for a person. (Finance without a district is city-wide; operators and assessors have none.)
 */
function unscopedReason(p: Pick<Principal, 'role' | 'district' | 'institutionId' | 'personRef'>): string | undefined {
  if (p.role === 'hr' && !p.district) return 'an HR principal needs its district';
  if (p.role === 'institution' && !p.institutionId) return 'an institution principal needs its institution';
  if (p.role === 'holder' && !p.personRef) return 'a holder principal needs its person';
  return undefined;
}

/** The Shaoxing district an HR principal acts for (403 FORBIDDEN_SCOPE for one outside Shaoxing). */
export function hrDistrict(req: Request): string {
  const district = req.principal!.district;
  if (!district || !isShaoxingDistrict(district)) throw new Problem(403, 'FORBIDDEN_SCOPE', 'HR principal has no Shaoxing district');
  return district;
}

/** The institution an institution principal acts for (403 FORBIDDEN_SCOPE for a key bound to none). */
export function ownInstitutionId(req: Request): string {
  const institutionId = req.principal!.institutionId;
  if (!institutionId) throw new Problem(403, 'FORBIDDEN_SCOPE', 'institution principal has no institution');
  return institutionId;
}

export function requireRole(...roles: Role[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.principal || !roles.includes(req.principal.role)) next(new Problem(403, 'FORBIDDEN_ROLE', `needs role ${roles.join(' or ')}`));
    else next();
  };
}
