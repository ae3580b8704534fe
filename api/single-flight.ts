/**
 * Storm protection for one voucher (test/drill-duplicate-storm.test.ts): a thousand identical requests
 * at once must not become a thousand Temporal round trips against one workflow — under that load the
 * server aborts Updates ("workflow update was aborted") faster than the client's retries absorb, and
 * callers would see 503s.
 *
 * exclusive(): one state-changing call per key at a time in this process; the others are refused at
 * once, exactly as the workflow refuses a second Update while one runs (409 ACTION_IN_PROGRESS). The
 * workflow stays the authority: across API processes its own validators decide.
 *
 * freshReads(): concurrent reads of one key share a query, but never one that started before the caller
 * arrived — a query already in flight may predate the caller's own last write, so latecomers wait for
 * the next one, which starts when the running one ends and is shared by everyone who arrived meanwhile.
 * Every caller gets a state at least as new as its arrival; a thousand reads at once cost two queries,
 * not a thousand (which would overflow the server's per-workflow query buffer: RESOURCE_EXHAUSTED).
 */
import { Problem } from './problem';

export function exclusive(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const busy = new Set<string>();
  return async (key, fn) => {
    if (busy.has(key)) throw new Problem(409, 'ACTION_IN_PROGRESS', 'another action on this voucher is in progress; retry when it has finished');
    busy.add(key);
    try {
      return await fn();
    } finally {
      busy.delete(key);
    }
  };
}

export function freshReads(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  interface Next {
    fn: () => Promise<unknown>;
    promise: Promise<unknown>;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  }
  /** Per key: a read in flight (the entry exists) and the one that waits for it (shared by latecomers). */
  const slots = new Map<string, { next?: Next }>();
  const run = (key: string, fn: () => Promise<unknown>): Promise<unknown> => {
    const slot = slots.get(key) ?? {};
    slots.set(key, slot);
    const p = fn();
    const settled = () => {
      const next = slot.next;
      if (!next) {
        slots.delete(key);
        return;
      }
      slot.next = undefined;
      run(key, next.fn).then(next.resolve, next.reject);
    };
    p.then(settled, settled);
    return p;
  };
  return <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const slot = slots.get(key);
    if (!slot) return run(key, fn) as Promise<T>;
    if (!slot.next) {
      let resolve!: (v: unknown) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<unknown>((res, rej) => ((resolve = res), (reject = rej)));
      slot.next = { fn, promise, resolve, reject };
    }
    return slot.next.promise as Promise<T>;
  };
}
