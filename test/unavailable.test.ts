/**
 * api/unavailable.ts: which errors mean "a dependency is down, retry later" (503 + Retry-After) and
 * which stay what they are. The drills (test/drill-postgres-outage.test.ts, test/drill-dev-server-restart
 * .test.ts) show the mapping end to end; this covers the shapes they cannot provoke on demand.
 */
import { ServiceError } from '@temporalio/client';
import { unavailableProblem } from '../api/unavailable';

const withCode = (message: string, code: unknown, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { code, ...extra });

test.each([
  ['connection refused', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
  ['connection reset', withCode('read ECONNRESET', 'ECONNRESET')],
  ['connection dropped mid-query (node-postgres, no code)', new Error('select 1 - Connection terminated unexpectedly')],
  ['connect timeout (node-postgres)', new Error('Connection terminated due to connection timeout')],
  ['pool exhausted (knex)', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' })],
  ['server shutting down (57P01)', withCode('terminating connection due to administrator command', '57P01')],
  ['server starting (57P03)', withCode('the database system is starting up', '57P03')],
  ['too many connections (53300)', withCode('sorry, too many clients already', '53300')],
  ['connection failure class 08', withCode('connection failure', '08006')],
  ['wrapped in a cause', Object.assign(new Error('activity failed'), { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') })],
])('database unavailable: %s → 503 DATABASE_UNAVAILABLE', (_name, err) => {
  expect(unavailableProblem(err)).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
});

test.each([
  ['UNAVAILABLE (14)', 14],
  ['DEADLINE_EXCEEDED (4)', 4],
  ['RESOURCE_EXHAUSTED (8)', 8],
])('Temporal %s → 503 TEMPORAL_UNAVAILABLE', (_name, code) => {
  const err = new ServiceError('Failed to query workflow', { cause: withCode('14 UNAVAILABLE: No connection established', code) });
  expect(unavailableProblem(err)).toMatchObject({ status: 503, code: 'TEMPORAL_UNAVAILABLE' });
});

test('a query past its deadline on the native connection (CANCELLED "Timeout expired") → 503 TEMPORAL_UNAVAILABLE', () => {
  // As core reports it: the cause is itself a ServiceError, with the gRPC code on it.
  const err = new ServiceError('Failed to query Workflow', { cause: Object.assign(new ServiceError('Timeout expired'), { code: 1 }) });
  expect(unavailableProblem(err)).toMatchObject({ status: 503, code: 'TEMPORAL_UNAVAILABLE' });
});

test.each([
  ['a Temporal CANCELLED for another reason', new ServiceError('cancelled', { cause: withCode('Call cancelled', 1) })],
  ['a unique violation', withCode('duplicate key value violates unique constraint', '23505')],
  ['a syntax error', withCode('syntax error at or near "x"', '42601')],
  ['a plain error', new Error('boom')],
  ['a Temporal NOT_FOUND', new ServiceError('not found', { cause: withCode('5 NOT_FOUND', 5) })],
  ['not an error', 'oops'],
  ['nothing', undefined],
])('not a dependency outage: %s → undefined (stays a 4xx/500)', (_name, err) => {
  expect(unavailableProblem(err)).toBeUndefined();
});
