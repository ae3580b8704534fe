/** RFC 9457 problem details: one stable `type` per error, the rule ID where a policy rule refused. */
import type { Response } from 'express';

export const PROBLEM_BASE = 'https://vouchers.shaoxing.example/problems/';

export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail?: string,
    readonly rule?: string | null,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail ?? code);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Refused by policy',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service unavailable',
};

export function sendProblem(res: Response, p: Problem, instance?: string): void {
  res.locals.problemCode = p.code;
  res
    .status(p.status)
    .type('application/problem+json')
    .json({
      type: PROBLEM_BASE + p.code.toLowerCase().replace(/_/g, '-'),
      title: TITLES[p.status] ?? 'Error',
      status: p.status,
      code: p.code,
      ...(p.detail ? { detail: p.detail } : {}),
      ...(p.rule ? { rule: p.rule } : {}),
      ...(instance ? { instance } : {}),
      ...p.extra,
    });
}
