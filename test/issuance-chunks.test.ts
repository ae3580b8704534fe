/**
 * How a trainee list (R2.5) is split into chunk activities: never more rows per chunk than the cap,
 * the fewest waves of parallel chunks, and a last wave that keeps the lanes busy.
 */
import fc from 'fast-check';
import { LIST_CHUNK_SIZE, LIST_PARALLEL_CHUNKS, listChunkSize } from '../workflows/issuance/contract';

test('R2.5: 10,000 rows go out as 52 chunks of at most 193 rows (13 full waves of 4), not 50 of 200 with a last wave of 2', () => {
  const size = listChunkSize(10_000);
  expect(size).toBe(193);
  expect(Math.ceil(10_000 / size)).toBe(52);
  expect(LIST_PARALLEL_CHUNKS).toBe(4);
});

test('R2.5: for any list, chunks stay within the cap, take the fewest waves, and fill every wave, the last included', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 500 }), (total, lanes, max) => {
      const size = listChunkSize(total, lanes, max);
      const chunks = Math.ceil(total / size);
      const fewestWaves = Math.ceil(total / (lanes * max));
      expect(size).toBeGreaterThanOrEqual(1);
      expect(size).toBeLessThanOrEqual(max);
      // No more waves than fixed chunks of `max` would take ...
      expect(Math.ceil(chunks / lanes)).toBe(fewestWaves);
      // ... and every wave full, the last included, once the list has enough rows to split that evenly
      // (n chunks of whole rows need n·(n−1) rows; 10,000 rows and 52 chunks: 2,652).
      const n = fewestWaves * lanes;
      if (total >= n * (n - 1)) expect(chunks).toBe(n);
    }),
    { numRuns: 2000 },
  );
});

test('R2.5: the defaults are the contract\'s: a list of up to 800 rows still runs four chunks at once', () => {
  expect(listChunkSize(800)).toBe(LIST_CHUNK_SIZE);
  expect(Math.ceil(801 / listChunkSize(801))).toBe(8);
  expect(listChunkSize(3)).toBe(1);
});
