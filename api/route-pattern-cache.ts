/**
 * express-openapi-validator 5.6 finds a request's operation by compiling the documented path patterns
 * one after another with path-to-regexp's `pathToRegexp`, on every request, until one matches
 * (cdimascio/express-openapi-validator#1217, still open). With the contract's 56 paths a request to a
 * late path compiled dozens of patterns; the check-in route, seventh, compiled seven (≈ 100 µs of CPU
 * per check-in on the bench machine, docs/PERFORMANCE.md §3).
 *
 * `memoisePathPatterns()` makes `pathToRegexp` remember what it compiled: the same pattern with the same
 * options gives the same result, and the validator only reads it (`regexp.exec` on a regexp without the
 * global flag, `keys.map`). Only calls with a string pattern and nothing but `sensitive` / `strict` as
 * options (what the validator passes) are remembered, at most `MAX_PATTERNS` of them; any other call goes
 * through unchanged. Express's own router is not affected: it compiles its routes once, through
 * path-to-regexp's `match`, which does not go through the export.
 */
import { createRequire } from 'node:module';

type PathToRegexp = (path: unknown, options?: Record<string, unknown>) => { regexp: RegExp; keys: unknown[] };

const MAX_PATTERNS = 1024;
const MEMOISED = Symbol.for('shaoxing.vouchers.memoisedPathToRegexp');

type Module = { pathToRegexp: PathToRegexp & { [MEMOISED]?: ReturnType<typeof counters> } };

/** The validator's own copy of path-to-regexp (npm dedupes it with the router's; resolved from the
 * validator so that a nested copy would be the one patched). */
function validatorsPathToRegexp(): Module {
  return createRequire(require.resolve('express-openapi-validator'))('path-to-regexp') as Module;
}

/** The memo's counters if it is installed in this process. */
export function pathPatternMemo(): { compiled: () => number; served: () => number } | undefined {
  return validatorsPathToRegexp().pathToRegexp[MEMOISED];
}

/** Installs the memo on the path-to-regexp the validator loads (once per process); returns its counters. */
export function memoisePathPatterns(): { compiled: () => number; served: () => number } {
  const mod = validatorsPathToRegexp();
  const installed = mod.pathToRegexp[MEMOISED];
  if (installed) return installed;

  const original = mod.pathToRegexp;
  const cache = new Map<string, ReturnType<PathToRegexp>>();
  const c = counters();
  const memoised = ((path: unknown, options: Record<string, unknown> = {}) => {
    const keys = Object.keys(options);
    if (typeof path !== 'string' || !keys.every((k) => k === 'sensitive' || k === 'strict')) return original(path, options);
    const key = `${options.sensitive ? 1 : 0}${options.strict ? 1 : 0}${path}`;
    const hit = cache.get(key);
    if (hit) {
      c.servedN++;
      return hit;
    }
    const r = original(path, options);
    c.compiledN++;
    if (cache.size < MAX_PATTERNS) cache.set(key, r);
    return r;
  }) as PathToRegexp & { [MEMOISED]?: ReturnType<typeof counters> };
  memoised[MEMOISED] = c;
  mod.pathToRegexp = memoised;
  return c;
}

function counters() {
  const c = {
    compiledN: 0,
    servedN: 0,
    compiled: () => c.compiledN,
    served: () => c.servedN,
  };
  return c;
}
