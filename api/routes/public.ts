/** Unauthenticated, read-only routes (mounted under /v1/public). */
import { Router } from 'express';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { asyncRoute, isLocalDate, parse, type ApiDeps } from '../http';
import { STATS_PAGE_HTML } from './stats-page';

const CatalogueQuery = z
  .object({
    format: z.enum(['json', 'csv']).default('json'),
    on: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).refine(isLocalDate, 'not a calendar date').optional(),
  })
  .strict();

const ymd = (d: Date | string | null): string | null => {
  if (d === null) return null;
  if (typeof d === 'string') return d.slice(0, 10);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};

export interface CatalogueEntryView {
  id: number;
  occupationCode: string;
  level: string;
  trainingKind: string;
  amountFen: number;
  fundingSource: string;
  validFrom: string;
  validTo: string | null;
}

export function catalogueView(r: Record<string, unknown>): CatalogueEntryView {
  return {
    id: Number(r.id),
    occupationCode: r.occupation_code as string,
    level: r.level as string,
    trainingKind: r.training_kind as string,
    amountFen: Number(r.amount_fen),
    fundingSource: r.funding_source as string,
    validFrom: ymd(r.valid_from as Date)!,
    validTo: ymd(r.valid_to as Date | null),
  };
}

export function publicRoutes(deps: ApiDeps): Router {
  const { db } = deps;
  const r = Router();

  // R3.11: the published subsidy catalogue (amounts in integer fen), optionally as of one date.
  r.get(
    '/catalogue',
    asyncRoute(async (req, res) => {
      const q = parse(CatalogueQuery, req.query);
      let rows = db('subsidy_catalogue').select('*');
      if (q.on) rows = rows.where('valid_from', '<=', q.on).andWhere((w) => w.whereNull('valid_to').orWhere('valid_to', '>=', q.on!));
      const items = (await rows.orderBy(['occupation_code', 'level', 'training_kind', 'valid_from'])).map(catalogueView);
      if (q.format === 'csv') {
        const cols = ['id', 'occupationCode', 'level', 'trainingKind', 'amountFen', 'fundingSource', 'validFrom', 'validTo'] as const;
        const csv = stringify([[...cols], ...items.map((i) => cols.map((c) => (i[c] === null ? '' : String(i[c]))))], { record_delimiter: '\r\n' });
        res.type('text/csv; charset=utf-8').setHeader('content-disposition', 'inline; filename="subsidy-catalogue.csv"');
        res.send(csv);
        return;
      }
      res.json({ items });
    }),
  );
  return r;
}

/** R5.1: the statistics page (`GET /stats`, mounted at the app root): static HTML, no CDN, inline SVG charts. */
export function statsPageRoutes(): Router {
  const r = Router();
  r.get('/stats', (_req, res) => {
    res.setHeader('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:");
    res.type('html').send(STATS_PAGE_HTML);
  });
  return r;
}
