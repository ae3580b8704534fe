/** Process configuration, read once from the environment. Every variable is listed in README.md. */
export interface Config {
  databaseUrl?: string;
  temporalAddress?: string;
  temporalNamespace: string;
  apiPort: number;
  /**
   * How long the API keeps an idle keep-alive connection open. Longer than the idle timeout of any
   * proxy or load balancer in front (nginx `keepalive_timeout` and cloud load balancers: 60 s), so the
   * proxy, not the API, closes an idle upstream connection: otherwise the proxy can send a request on a
   * connection the API is closing at that moment, and the client gets a 502.
   */
  apiKeepAliveTimeoutMs: number;
  /** 32-byte key (hex or base64) for the keyed hash of resident ID numbers. */
  personRefKey: string;
  /** 32-byte key (hex or base64) encrypting personal data at rest. */
  piiKey: string;
  logLevel: string;
  /** Payload codec keys, `keyId:64-hex[,keyId:64-hex]`, and the key ID that encrypts. */
  codecKeys: string;
  codecKeyId?: string;
  /** Origin of the Temporal Web UI allowed to call the codec endpoint (CORS). */
  temporalUiOrigin: string;
  /** Where the worker's SDK runtime serves Prometheus metrics (task latencies, slots, sticky cache). */
  workerMetricsAddress: string;
  /** Workflow tasks one worker process runs at once (workers/voucher-worker.ts: DEFAULT_WORKER_TUNING). */
  workerMaxConcurrentWorkflowTasks?: number;
}

/** Development-only keys; `npm start` replaces them with keys generated under `.data/` on first run. */
const DEV_KEY = '0'.repeat(64);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    apiPort: Number(env.PORT || env.API_PORT || 3000),
    apiKeepAliveTimeoutMs: Number(env.API_KEEP_ALIVE_TIMEOUT_MS || 65_000),
    personRefKey: env.PERSON_REF_KEY || DEV_KEY,
    piiKey: env.PII_KEY || DEV_KEY,
    logLevel: env.LOG_LEVEL || 'info',
    codecKeys: env.TEMPORAL_CODEC_KEYS || `dev:${DEV_KEY}`,
    codecKeyId: env.TEMPORAL_CODEC_KEY_ID || undefined,
    temporalUiOrigin: env.TEMPORAL_UI_ORIGIN || 'http://127.0.0.1:8233',
    workerMetricsAddress: env.WORKER_METRICS_ADDRESS || '127.0.0.1:9464',
    workerMaxConcurrentWorkflowTasks: env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS ? Number(env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS) : undefined,
  };
}
