/**
 * Lint, as a test: what the workflow bundle can load. Starting at workflows/index.ts (what the
 * worker bundles), it follows every runtime import and fails when one reaches
 *   - a package other than @temporalio/workflow and @temporalio/common (and their subpaths),
 *   - a Node built-in (`fs`, `node:crypto`, ...),
 *   - project code under activities/, api/, workers/, db/ or lib/ (I/O, clients, secrets),
 * and when a reachable file uses Math.random, setTimeout or setInterval (use the SDK's `uuid4()` and
 * `sleep()` / `condition()` instead). Date.now() and new Date() are fine: the SDK pins them to
 * workflow time.
 *
 * Type-only imports (`import type`, `export type ... from`, or braces whose every name is marked
 * `type`) are skipped: the compiler erases them. An `import { X }` used only as a type is also erased
 * by the compiler, but counts here as a runtime import: mark it `import type`.
 *
 * Sources are parsed with the TypeScript compiler, so comments and strings never match.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
const ENTRY = 'workflows/index.ts';

/** Packages the workflow sandbox may load, with any subpath. */
const ALLOWED_PACKAGES = ['@temporalio/workflow', '@temporalio/common'];
/** Project directories that workflow code must never load at runtime. */
const FORBIDDEN_DIRS = ['activities', 'api', 'workers', 'db', 'lib'];

interface ImportRef {
  specifier: string;
  line: number;
  typeOnly: boolean;
}

interface Violation {
  /** Project-relative path of the offending file. */
  file: string;
  line: number;
  kind: 'import' | 'call';
  /** The import specifier, or the forbidden API. */
  subject: string;
  reason: string;
  /** Import chain from the entry point to `file`. */
  chain: string[];
}

const toPosix = (p: string) => p.split(path.sep).join('/');
const lineOf = (sf: ts.SourceFile, node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;

/** Every module reference in a file: static imports, re-exports, `import x = require()`, `require()`, `import()`. */
function importsOf(sf: ts.SourceFile): ImportRef[] {
  const refs: ImportRef[] = [];
  const add = (spec: ts.Expression, node: ts.Node, typeOnly: boolean) => {
    // A computed specifier cannot be checked: report it as-is and let the rules reject it.
    const specifier = ts.isStringLiteralLike(spec) ? spec.text : `<computed: ${spec.getText(sf)}>`;
    refs.push({ specifier, line: lineOf(sf, node), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      // `import type ...`, or `import { type A, type B }` with nothing else: erased. `import 'x'` is not.
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings)
        && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, node, typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const typeOnly = node.isTypeOnly || (!!node.exportClause && ts.isNamedExports(node.exportClause)
        && node.exportClause.elements.length > 0 && node.exportClause.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier, node, typeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.arguments.length > 0
      && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      add(node.arguments[0]!, node, false);
    }
    // `typeof import('x')` is an ImportTypeNode, not a call: type-only, never collected.
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

const TIMERS = new Set(['setTimeout', 'setInterval']);
const GLOBAL_OBJECTS = new Set(['globalThis', 'global', 'window', 'self']);

/** Uses of Math.random, setTimeout and setInterval (also as `globalThis.setTimeout`, `Math['random']`). */
function forbiddenCallsOf(sf: ts.SourceFile): { api: string; line: number }[] {
  const found: { api: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Math' && node.name.text === 'random') {
      found.push({ api: 'Math.random', line: lineOf(sf, node) });
    } else if (ts.isElementAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Math'
      && ts.isStringLiteralLike(node.argumentExpression) && node.argumentExpression.text === 'random') {
      found.push({ api: 'Math.random', line: lineOf(sf, node) });
    } else if (ts.isIdentifier(node) && TIMERS.has(node.text)) {
      const parent = node.parent;
      const isMemberName = ts.isPropertyAccessExpression(parent) && parent.name === node;
      // `x.setTimeout` is someone's property; `globalThis.setTimeout` is the timer. Names being
      // declared (`{ setTimeout: 1 }`, `function setTimeout`) are not uses.
      const isDeclaredName = !ts.isPropertyAccessExpression(parent) && (parent as { name?: ts.Node }).name === node;
      if (isMemberName ? ts.isIdentifier(parent.expression) && GLOBAL_OBJECTS.has(parent.expression.text) : !isDeclaredName) {
        found.push({ api: node.text, line: lineOf(sf, node) });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The file a relative specifier names: itself, with `.ts`, or its `index.ts` (`.js` maps to `.ts`). */
function resolveRelative(fromFile: string, specifier: string): string | undefined {
  const base = path.resolve(path.dirname(fromFile), specifier);
  const candidates = [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts'), path.join(base, 'index.tsx')];
  if (/\.[cm]?js$/.test(base)) candidates.push(base.replace(/\.([cm]?)js$/, '.$1ts'));
  return candidates.find((c) => /\.[cm]?tsx?$/.test(c) && !c.endsWith('.d.ts') && existsSync(c) && statSync(c).isFile());
}

const isBuiltin = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec) || builtinModules.includes(spec.split('/')[0]!);
const isAllowedPackage = (spec: string) => ALLOWED_PACKAGES.some((p) => spec === p || spec.startsWith(`${p}/`));

/** Walks the runtime import graph from `entry` (project-relative) under `root`. */
function lintWorkflowGraph(root: string, entry: string): { reached: string[]; violations: Violation[] } {
  const rel = (abs: string) => toPosix(path.relative(root, abs));
  const chains = new Map<string, string[]>(); // file reached -> import chain that first reached it
  const violations: Violation[] = [];
  const queue = [path.join(root, entry)];
  chains.set(rel(queue[0]!), [rel(queue[0]!)]);

  while (queue.length > 0) {
    const file = queue.shift()!;
    const chain = chains.get(rel(file))!;
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
    const report = (line: number, kind: Violation['kind'], subject: string, reason: string) =>
      violations.push({ file: rel(file), line, kind, subject, reason, chain });

    for (const imp of importsOf(sf)) {
      if (imp.typeOnly) continue; // erased at compile time; may point anywhere
      const spec = imp.specifier;
      if (spec.startsWith('<computed')) {
        report(imp.line, 'import', spec, 'module specifier is not a string literal, so it cannot be checked');
      } else if (spec.startsWith('.') || path.isAbsolute(spec)) {
        const target = resolveRelative(file, spec);
        if (!target) {
          report(imp.line, 'import', spec, 'cannot be resolved to a .ts file');
          continue;
        }
        const targetRel = rel(target);
        const top = targetRel.split('/')[0]!;
        if (targetRel.startsWith('../') || path.isAbsolute(targetRel)) {
          report(imp.line, 'import', spec, `resolves outside the project (${target})`);
        } else if (FORBIDDEN_DIRS.includes(top)) {
          report(imp.line, 'import', spec, `loads ${targetRel}: ${top}/ is not workflow code (use \`import type\` for its types)`);
        } else if (!chains.has(targetRel)) {
          chains.set(targetRel, [...chain, targetRel]);
          queue.push(target);
        }
      } else if (isBuiltin(spec)) {
        report(imp.line, 'import', spec, 'Node built-in modules are not available to workflows');
      } else if (!isAllowedPackage(spec)) {
        report(imp.line, 'import', spec, `package outside ${ALLOWED_PACKAGES.join(' and ')}`);
      }
    }

    for (const call of forbiddenCallsOf(sf)) {
      const hint = call.api === 'Math.random' ? 'use uuid4() from @temporalio/workflow or pass randomness in' : 'use sleep() or condition() from @temporalio/workflow';
      report(call.line, 'call', call.api, `not allowed in workflow code: ${hint}`);
    }
  }
  return { reached: [...chains.keys()].sort(), violations };
}

/** One line per violation: where, what, why, and how the workflow reaches the file. */
function describeViolation(v: Violation): string {
  const what = v.kind === 'import' ? `imports '${v.subject}'` : `uses ${v.subject}`;
  return `${v.file}:${v.line} ${what}: ${v.reason} [reached via ${v.chain.join(' -> ')}]`;
}

describe('workflow determinism lint', () => {
  // The bundle has two roots: the workflows, and the failure converter loaded by path (lib/codec.ts).
  const main = lintWorkflowGraph(ROOT, ENTRY);
  const converter = lintWorkflowGraph(ROOT, 'workflows/failure-converter.ts');
  const interceptors = lintWorkflowGraph(ROOT, 'workflows/request-id-interceptors.ts');
  const reached = [...new Set([...main.reached, ...converter.reached, ...interceptors.reached])];
  const violations = [...main.violations, ...converter.violations, ...interceptors.violations];

  test('the walker reaches the voucher workflow and the calendar it uses', () => {
    // Guards against a vacuous pass: a walker that finds nothing finds no violation either.
    expect(reached).toEqual(expect.arrayContaining([ENTRY, 'workflows/voucher/workflow.ts', 'policy/calendar.ts', 'workflows/failure-converter.ts']));
  });

  test('workflow code imports only @temporalio/workflow, @temporalio/common and pure project modules', () => {
    expect(violations.filter((v) => v.kind === 'import').map(describeViolation)).toEqual([]);
  });

  test('workflow code does not use Math.random, setTimeout or setInterval', () => {
    expect(violations.filter((v) => v.kind === 'call').map(describeViolation)).toEqual([]);
  });

  describe('the lint itself, on a scratch project', () => {
    let dir: string;
    const write = (file: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    };

    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'wf-lint-'));
      write('workflows/index.ts', [
        "export { wf } from './wf';",
        "import type { Acts } from '../activities/acts';",
        "import { type Zone } from 'luxon';",
        "export type { Row } from '../db/rows';",
        '',
      ].join('\n'));
      write('workflows/wf.ts', [
        "import { sleep } from '@temporalio/workflow';",
        "import { defineSearchAttributeKey } from '@temporalio/common/lib/search-attributes';",
        "import { helper } from '../policy';",
        "import '../lib/side-effect';",
        '// setTimeout(() => {}, 1) in a comment is fine, and so is a string:',
        "const label = 'Math.random';",
        'export async function wf() { const t = Date.now() + new Date().getTime(); await sleep(1); return Math.random() + t + helper(); }',
        '',
      ].join('\n'));
      write('policy/index.ts', [
        "import { DateTime } from 'luxon';",
        "import { readFileSync } from 'node:fs';",
        "import { createHash } from 'crypto';",
        "export * from './deep';",
        'setInterval(() => {}, 1000);',
        'const opts = { setTimeout: 5 };',
        '',
      ].join('\n'));
      write('policy/deep.ts', [
        "const p = require('path/posix');",
        'export const helper = () => { globalThis.setTimeout(() => {}, 1); return 1; };',
        "export const later = () => import('./missing');",
        '',
      ].join('\n'));
      write('activities/acts.ts', "import { readFileSync } from 'node:fs';\nexport type Acts = { a(): void };\n");
      write('lib/side-effect.ts', "import { Client } from 'pg';\n");
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('follows re-exports and index.ts, and not type-only imports', () => {
      expect(lintWorkflowGraph(dir, ENTRY).reached).toEqual(['policy/deep.ts', 'policy/index.ts', 'workflows/index.ts', 'workflows/wf.ts']);
    });

    test('reports each broken rule with its file, line and import chain', () => {
      const found = lintWorkflowGraph(dir, ENTRY).violations.map((v) => `${v.file}:${v.line} ${v.subject}`).sort();
      expect(found).toEqual([
        'policy/deep.ts:1 path/posix',
        'policy/deep.ts:2 setTimeout',
        'policy/deep.ts:3 ./missing',
        'policy/index.ts:1 luxon',
        'policy/index.ts:2 node:fs',
        'policy/index.ts:3 crypto',
        'policy/index.ts:5 setInterval',
        'workflows/wf.ts:4 ../lib/side-effect',
        'workflows/wf.ts:7 Math.random',
      ]);
      const luxon = lintWorkflowGraph(dir, ENTRY).violations.find((v) => v.subject === 'luxon')!;
      expect(describeViolation(luxon)).toBe(
        "policy/index.ts:1 imports 'luxon': package outside @temporalio/workflow and @temporalio/common "
        + '[reached via workflows/index.ts -> workflows/wf.ts -> policy/index.ts]',
      );
    });
  });
});
