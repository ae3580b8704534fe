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
 * (Reads are deliberately not shared: a shared in-flight query could hand a caller a state from
 * before its own write had finished.)
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
