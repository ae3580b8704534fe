/**
 * The API's breaker in front of Temporal (lib/temporal-breaker.ts), on its own: which failures open it,
 * that an open breaker fails at once without calling, and that a probe that is answered closes it. The
 * calls and the probe are stand-ins; the breaker against a real Temporal that goes away and comes back
 * is drilled in test/drill-dev-server-restart.test.ts.
 */
import { ServiceError } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { unavailableProblem } from '../api/unavailable';
import { TemporalBreaker } from '../lib/temporal-breaker';

const grpcFailure = (code: number) => new ServiceError('Failed to query Workflow', { cause: Object.assign(new Error('down'), { code }) });

test('an UNAVAILABLE failure opens the breaker; while open, calls fail at once as UNAVAILABLE (the API answers 503) and are not made', async () => {
  let temporalUp = false;
  const events: string[] = [];
  const breaker = new TemporalBreaker(async () => {
    if (!temporalUp) throw grpcFailure(14);
  }, { opened: () => events.push('opened'), closed: () => events.push('closed') });
  await expect(breaker.guard(async () => { throw grpcFailure(14); })).rejects.toThrow('Failed to query Workflow');
  expect(breaker.isOpen).toBe(true);

  let calls = 0;
  const refused = await breaker.guard(async () => ++calls).catch((e: unknown) => e);
  expect(calls).toBe(0);
  expect(unavailableProblem(refused)).toMatchObject({ status: 503, code: 'TEMPORAL_UNAVAILABLE' });

  temporalUp = true;
  for (let i = 0; i < 50 && breaker.isOpen; i++) await sleep(100);
  expect({ open: breaker.isOpen, events }).toEqual({ open: false, events: ['opened', 'closed'] });
  expect(await breaker.guard(async () => ++calls)).toBe(1);
});

test('a slow server (DEADLINE_EXCEEDED) or a refusal of the request itself does not open the breaker', async () => {
  const breaker = new TemporalBreaker(async () => undefined);
  await expect(breaker.guard(async () => { throw grpcFailure(4); })).rejects.toThrow();
  await expect(breaker.guard(async () => { throw grpcFailure(3); })).rejects.toThrow();
  await expect(breaker.guard(async () => { throw new Error('workflow not found'); })).rejects.toThrow();
  expect(breaker.isOpen).toBe(false);
  expect(await breaker.guard(async () => 'answered')).toBe('answered');
});

test('the probe stops once the connection is closed (IllegalStateError) or the breaker is stopped', async () => {
  let probes = 0;
  const closed = new TemporalBreaker(async () => {
    probes++;
    throw Object.assign(new Error('Client already closed'), { name: 'IllegalStateError' });
  });
  await closed.guard(async () => { throw grpcFailure(14); }).catch(() => undefined);
  await sleep(1_500);
  expect(probes).toBe(1);

  let stoppedProbes = 0;
  const stopped = new TemporalBreaker(async () => {
    stoppedProbes++;
    throw grpcFailure(14);
  });
  await stopped.guard(async () => { throw grpcFailure(14); }).catch(() => undefined);
  stopped.stop();
  const at = stoppedProbes;
  await sleep(1_500);
  expect(stoppedProbes).toBeLessThanOrEqual(at + 1);
});
