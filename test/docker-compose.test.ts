/**
 * The wiring of docker-compose.yml, checked without a Docker engine: the file is parsed and compared
 * with what the code expects (lib/config.ts for the environment, the search-attribute keys of the
 * workflow). A rename on either side fails here instead of at `docker compose up`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../workflows/voucher/search-attributes';
import { API_NODE_OPTIONS } from '../lib/node-options';

const ROOT = path.resolve(__dirname, '..');

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: unknown;
  volumes?: unknown[];
}

// `merge: true` resolves the `<<: *anchor` merge keys, as Compose does.
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;

const APP_SERVICES = ['worker', 'api'];
const EXPECTED_SERVICES = ['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', ...APP_SERVICES];

/** Environment of a service as a map (Compose allows a map or a `KEY=value` list); raw, uninterpolated. */
function envOf(name: string): Record<string, string> {
  const env = services[name]?.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => {
      const i = e.indexOf('=');
      return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v == null ? '' : String(v)]));
}

/**
 * Compose interpolation, enough to read values: `${X:-default}` / `${X-default}` become the default,
 * any other `${X...}` / `$X` a placeholder (a required value the user supplies), `$$` a literal `$`.
 */
function interpolate(s: string): string {
  return s
    .replace(/\$\$/g, '\u0000')
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?[^}]*\}/g, (_m, _name, dflt) => (dflt !== undefined ? dflt : 'placeholder'))
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, 'placeholder')
    .replace(/\u0000/g, '$');
}

/** Container ports a service publishes, with the host port each is published on. */
function portsOf(name: string): { target: number; published?: number }[] {
  return (services[name]?.ports ?? []).map((p) => {
    if (typeof p === 'object') return { target: Number(p.target), published: p.published === undefined ? undefined : Number(p.published) };
    // Short syntax: [HOST_IP:]PUBLISHED:TARGET[/proto], or TARGET alone.
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    const target = Number(parts[parts.length - 1]);
    return parts.length === 1 ? { target } : { target, published: Number(parts[parts.length - 2]) };
  });
}

function dependsOn(name: string): string[] {
  const d = services[name]?.depends_on ?? [];
  return Array.isArray(d) ? d : Object.keys(d);
}

/** A `host:port` address (no scheme). */
function hostPort(address: string): { host: string; port: number } {
  const m = /^([^:/]+):(\d+)$/.exec(interpolate(address));
  if (!m) throw new Error(`not a host:port address: ${address}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** The environment variable names lib/config.ts reads (`env.X` or `env['X']`), from its source text. */
function configEnvNames(): Set<string> {
  const src = readFileSync(path.join(ROOT, 'lib', 'config.ts'), 'utf8');
  const names = new Set<string>();
  for (const m of src.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b|\benv\[['"]([A-Z][A-Z0-9_]*)['"]\]/g)) names.add((m[1] ?? m[2])!);
  return names;
}

/** The whole command of a service as one shell text, `$$` unescaped and line continuations joined. */
function commandText(name: string): string {
  const c = services[name]?.command ?? '';
  return (Array.isArray(c) ? c.join(' ') : c).replace(/\$\$/g, '$').replace(/\\\r?\n/g, ' ');
}

describe('docker-compose.yml', () => {
  test('defines every service of the stack', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(EXPECTED_SERVICES));
  });

  test('depends_on names only services that exist', () => {
    const dangling = Object.keys(services).flatMap((s) => dependsOn(s).filter((d) => !(d in services)).map((d) => `${s} -> ${d}`));
    expect(dangling).toEqual([]);
  });

  test('worker and api run the same image, built from the project Dockerfile', () => {
    const { worker, api } = services;
    expect(worker!.build).toBeDefined();
    expect(worker!.build).toEqual(api!.build);
    expect(worker!.image).toEqual(api!.image);
    const build = worker!.build as string | { context?: string; dockerfile?: string };
    const context = typeof build === 'string' ? build : build.context ?? '.';
    const dockerfile = typeof build === 'string' ? 'Dockerfile' : build.dockerfile ?? 'Dockerfile';
    expect(path.resolve(ROOT, context, dockerfile)).toBe(path.join(ROOT, 'Dockerfile'));
  });

  test('worker and api run their entry points', () => {
    expect(commandText('worker')).toBe('npx tsx workers/main.ts');
    expect(commandText('api')).toBe('npx tsx api/main.ts');
  });

  test('every service built from the project sets only variables lib/config.ts (or Node itself: NODE_OPTIONS) reads', () => {
    const known = configEnvNames();
    // Sanity check of the extraction itself, so an empty set cannot pass everything.
    expect([...known]).toEqual(expect.arrayContaining(['DATABASE_URL', 'TEMPORAL_ADDRESS', 'PERSON_REF_KEY', 'PII_KEY']));
    const built = Object.keys(services).filter((s) => services[s]!.build !== undefined);
    expect(built).toEqual(expect.arrayContaining(APP_SERVICES));
    const unknown = built.flatMap((s) => Object.keys(envOf(s)).filter((k) => !known.has(k) && k !== 'NODE_OPTIONS').map((k) => `${s}: ${k}`));
    expect(unknown).toEqual([]);
  });

  test('worker and api both set DATABASE_URL and TEMPORAL_ADDRESS', () => {
    for (const s of APP_SERVICES) expect(Object.keys(envOf(s))).toEqual(expect.arrayContaining(['DATABASE_URL', 'TEMPORAL_ADDRESS']));
  });

  test('TEMPORAL_ADDRESS of the app points at the temporal service on 7233', () => {
    expect(portsOf('temporal').map((p) => p.target)).toContain(7233);
    for (const s of APP_SERVICES) expect({ service: s, ...hostPort(envOf(s).TEMPORAL_ADDRESS!) }).toEqual({ service: s, host: 'temporal', port: 7233 });
  });

  test('DATABASE_URL of the app points at the postgresql service and its vouchers database', () => {
    const pg = envOf('postgresql');
    for (const s of APP_SERVICES) {
      const url = new URL(interpolate(envOf(s).DATABASE_URL!));
      expect({ service: s, protocol: url.protocol, host: url.hostname, port: url.port || '5432', db: url.pathname.slice(1), user: url.username })
        .toEqual({ service: s, protocol: 'postgres:', host: 'postgresql', port: '5432', db: 'vouchers', user: pg.POSTGRES_USER ?? 'postgres' });
    }
    expect(pg.POSTGRES_DB).toBe('vouchers');
    expect(services.postgresql!.healthcheck).toBeDefined();
    expect(services.postgresql!.volumes?.length).toBeGreaterThan(0);
  });

  test('Temporal keeps its own databases on the postgresql service', () => {
    const t = envOf('temporal');
    expect(services.temporal!.image).toMatch(/^temporalio\/auto-setup:/);
    expect(t).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql', DBNAME: 'temporal', VISIBILITY_DBNAME: 'temporal_visibility' });
    expect(dependsOn('temporal')).toContain('postgresql');
    expect((services.temporal!.depends_on as Record<string, { condition?: string }>).postgresql?.condition).toBe('service_healthy');
  });

  test('the api runs with the Node options the bench measured it with (lib/node-options.ts)', () => {
    expect(envOf('api').NODE_OPTIONS).toBe(API_NODE_OPTIONS);
  });

  test('the api publishes port 3000', () => {
    expect(portsOf('api')).toContainEqual({ target: 3000, published: 3000 });
    // The port it listens on is the one it publishes (PORT is read by lib/config.ts).
    expect(interpolate(envOf('api').PORT ?? '3000')).toBe('3000');
  });

  test('the Web UI talks to temporal:7233 and decodes payloads through the api /codec path', () => {
    const ui = envOf('temporal-ui');
    expect(hostPort(ui.TEMPORAL_ADDRESS!)).toEqual({ host: 'temporal', port: 7233 });
    expect(ui.TEMPORAL_CORS_ORIGINS).toBeTruthy();
    // The browser calls the codec endpoint, so it is the api's published port, seen from the host.
    const codec = new URL(interpolate(ui.TEMPORAL_CODEC_ENDPOINT!));
    expect(codec.pathname).toBe('/codec');
    expect(portsOf('api').map((p) => p.published)).toContain(Number(codec.port || (codec.protocol === 'https:' ? 443 : 80)));
  });

  test('secrets come from the environment, never from the file', () => {
    const api = envOf('api');
    expect(api.PERSON_REF_KEY).toBe('${PERSON_REF_KEY:?set PERSON_REF_KEY}');
    expect(api.PII_KEY).toBe('${PII_KEY:?set PII_KEY}');
    // Every secret-looking value anywhere is a required interpolation (`${X:?message}`), and so is
    // the password inside any URL.
    const literal: string[] = [];
    for (const s of Object.keys(services)) {
      for (const [k, v] of Object.entries(envOf(s))) {
        if (/(^|_)(KEYS?|PASSWORD|PWD|SECRET|TOKEN)$/.test(k) && !/^\$\{[A-Z0-9_]+:\?[^}]+\}$/.test(v)) literal.push(`${s}: ${k}`);
        const pw = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]+:([^@]*)@/.exec(v)?.[1];
        if (pw !== undefined && !/^\$\{[A-Z0-9_]+:\?[^}]+\}$/.test(pw)) literal.push(`${s}: ${k} (password in URL)`);
      }
    }
    expect(literal).toEqual([]);
  });

  test('worker and api encrypt workflow payloads with the same codec keys', () => {
    // The worker encodes what the api decodes (results, queries, /codec for the Web UI).
    const keys = envOf('worker').TEMPORAL_CODEC_KEYS;
    expect(keys).toMatch(/^\$\{TEMPORAL_CODEC_KEYS:\?[^}]+\}$/);
    expect(envOf('api').TEMPORAL_CODEC_KEYS).toBe(keys);
  });

  test('the api admits the Web UI origin to its codec endpoint', () => {
    const origin = new URL(interpolate(envOf('api').TEMPORAL_UI_ORIGIN!));
    expect(origin.pathname).toBe('/');
    expect(portsOf('temporal-ui').map((p) => p.published)).toContain(Number(origin.port || 80));
  });

  test('the setup service registers exactly the workflow search attributes, with their types', () => {
    expect(services['temporal-setup']!.image).toMatch(/^temporalio\/admin-tools:/);
    expect(dependsOn('temporal-setup')).toContain('temporal');
    const script = commandText('temporal-setup');
    const creates = script.split('\n').filter((line) => /\btemporal operator search-attribute create\b/.test(line));
    expect(creates).toHaveLength(1);
    const registered = [...creates[0]!.matchAll(/--name\s+(\S+)\s+--type\s+(\S+)/g)].map((m) => ({ name: m[1], type: m[2]!.toUpperCase() }));
    const expected = ALL_SEARCH_ATTRIBUTE_KEYS.map((k) => ({ name: k.name, type: String(k.type).toUpperCase() }));
    const byName = (a: { name?: string }, b: { name?: string }) => a.name!.localeCompare(b.name!);
    expect(registered.sort(byName)).toEqual(expected.sort(byName));
    expect(registered.map((r) => r.name).sort()).toEqual(
      ['ActivationDeadline', 'CheckInRate', 'InstitutionId', 'IssuerDistrict', 'OccupationCode', 'UseDeadline', 'VoucherStatus', 'VoucherType'],
    );
  });

  test('the app starts only after the search attributes are registered', () => {
    for (const s of APP_SERVICES) {
      expect((services[s]!.depends_on as Record<string, { condition?: string }>)['temporal-setup']?.condition).toBe('service_completed_successfully');
    }
  });
});
