/**
 * Storm protection's shared reads (api/single-flight.ts `freshReads`): a caller never gets the answer
 * of a read that started before it arrived, and a storm of reads costs a couple of queries. The read
 * is a stand-in that counts calls; the storm against a real workflow is drilled in
 * test/drill-duplicate-storm.test.ts.
 */
import { exclusive, freshReads } from '../api/single-flight';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

test('a caller that arrives while a read is in flight gets the next read, which starts after it and is shared by every latecomer', async () => {
  const read = freshReads();
  const gates: Array<ReturnType<typeof deferred<number>>> = [];
  let started = 0;
  const fn = () => {
    started++;
    const d = deferred<number>();
    gates.push(d);
    return d.promise;
  };
  const first = read('v1', fn);
  const late = Array.from({ length: 5 }, () => read('v1', fn));
  expect(started).toBe(1); // the latecomers wait: the read in flight may predate their own writes
  gates[0]!.resolve(1);
  expect(await first).toBe(1);
  await Promise.resolve();
  expect(started).toBe(2); // one read for all five, started after they arrived
  gates[1]!.resolve(2);
  expect(await Promise.all(late)).toEqual([2, 2, 2, 2, 2]);
  // Nothing left behind: the next caller starts a read of its own at once.
  const again = read('v1', fn);
  expect(started).toBe(3);
  gates[2]!.resolve(3);
  expect(await again).toBe(3);
});

test('a thousand concurrent reads of one voucher cost two queries; other vouchers are not held up', async () => {
  const read = freshReads();
  let calls = 0;
  const slow = () => new Promise<number>((r) => setTimeout(() => r(++calls), 20));
  const storm = Promise.all(Array.from({ length: 1000 }, () => read('v1', slow)));
  let otherCalls = 0;
  const other = await read('v2', async () => ++otherCalls);
  expect(other).toBe(1);
  const answers = await storm;
  expect(calls).toBe(2);
  expect(new Set(answers)).toEqual(new Set([1, 2]));
});

test('a failed read fails its sharers, and the next caller reads afresh', async () => {
  const read = freshReads();
  const gate = deferred<string>();
  const first = read('v1', () => gate.promise);
  const late = read('v1', () => Promise.reject(new Error('Temporal busy')));
  gate.reject(new Error('Temporal down'));
  await expect(first).rejects.toThrow('Temporal down');
  await expect(late).rejects.toThrow('Temporal busy');
  expect(await read('v1', async () => 'answered')).toBe('answered');
});

test('exclusive: a second state-changing call on the same voucher is refused at once with 409 ACTION_IN_PROGRESS', async () => {
  const oneAtATime = exclusive();
  const gate = deferred<string>();
  const first = oneAtATime('v1', () => gate.promise);
  await expect(oneAtATime('v1', async () => 'second')).rejects.toMatchObject({ status: 409, code: 'ACTION_IN_PROGRESS' });
  expect(await oneAtATime('v2', async () => 'other voucher')).toBe('other voucher');
  gate.resolve('first');
  expect(await first).toBe('first');
});
