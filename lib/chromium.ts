/**
 * Finds or provisions the headless browser for the browser tests: Debian's `chromium` package (no
 * browser is ever downloaded by playwright). Order: CHROMIUM_PATH; /usr/bin/chromium; as root with
 * apt-get available, `apt-get install chromium` (the registries reach Debian's mirror).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export function provisionChromium(log: (m: string) => void = (m) => process.stderr.write(`[provision] ${m}\n`)): string | undefined {
  const wanted = process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM;
  if (existsSync(wanted)) return wanted;
  if (process.env.CHROMIUM_PATH) throw new Error(`CHROMIUM_PATH=${wanted} does not exist`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) {
    log(`${wanted} is missing and cannot be installed here (needs root and apt-get): install Debian's chromium`);
    return undefined;
  }
  try {
    log('installing Debian chromium with apt-get');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env });
  } catch (e) {
    log(`apt-get install chromium failed: ${(e as Error).message}`);
  }
  return existsSync(wanted) ? wanted : undefined;
}
