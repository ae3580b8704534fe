/**
 * Fail fast while Temporal's frontend is unreachable.
 *
 * The API's client runs on the SDK's native connection (lib/temporal-connection.ts), whose Rust core
 * retries a call that finds the frontend UNAVAILABLE for ≈ 9–10 s before giving up (its retry policy
 * is not configurable from TypeScript in SDK 1.24). A request that meets a Temporal that is down
 * therefore waits that long and then answers 503 (api/unavailable.ts). The breaker keeps that to the
 * first requests: once a call has failed with UNAVAILABLE it opens, and until a probe
 * (`getSystemInfo`) is answered every further workflow call fails at once with an UNAVAILABLE
 * `ServiceError` — nothing is sent, so nothing half-happens — which the API answers with 503 and
 * `Retry-After` immediately. DEADLINE_EXCEEDED (a slow server, not an absent one) does not open it.
 */
import { ServiceError, type WorkflowClientInterceptor } from '@temporalio/client';

/** gRPC status UNAVAILABLE. */
const UNAVAILABLE = 14;
/** Pause between probes that fail at once (a closed port fails in milliseconds; core's retries take longer). */
const PROBE_PAUSE_MS = 500;

export interface BreakerEvents {
  opened?: () => void;
  closed?: (openMs: number) => void;
}

function isUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const x = e as { code?: unknown; cause?: unknown };
    if (x.code === UNAVAILABLE) return true;
    e = x.cause;
  }
  return false;
}

export class TemporalBreaker {
  private openedAt: number | undefined;
  private stopped = false;

  constructor(
    /** One call that succeeds once Temporal answers again. */
    private readonly probe: () => Promise<unknown>,
    private readonly events: BreakerEvents = {},
  ) {}

  get isOpen(): boolean {
    return this.openedAt !== undefined;
  }

  /** Stops probing (also happens by itself once the connection is closed). */
  stop(): void {
    this.stopped = true;
  }

  /** Runs `call` unless the breaker is open; an UNAVAILABLE failure opens it. */
  async guard<T>(call: () => Promise<T>): Promise<T> {
    if (this.openedAt !== undefined) {
      throw new ServiceError('Temporal is unavailable (the API stopped calling it until it answers again)', {
        cause: Object.assign(new Error('circuit open'), { code: UNAVAILABLE }),
      });
    }
    try {
      return await call();
    } catch (err) {
      if (isUnavailable(err)) this.open();
      throw err;
    }
  }

  private open(): void {
    if (this.openedAt !== undefined || this.stopped) return;
    this.openedAt = Date.now();
    this.events.opened?.();
    void this.probeUntilAnswered();
  }

  private async probeUntilAnswered(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.probe();
        const openMs = Date.now() - (this.openedAt ?? Date.now());
        this.openedAt = undefined;
        this.events.closed?.(openMs);
        return;
      } catch (err) {
        // The connection was closed under it (the process is stopping): nothing left to probe.
        if ((err as Error | undefined)?.name === 'IllegalStateError') return;
        // An unref'd pause: a probe loop never keeps the process alive.
        await new Promise((r) => setTimeout(r, PROBE_PAUSE_MS).unref());
      }
    }
  }

  /** The client interceptor: every workflow call the API makes goes through `guard`. */
  interceptor(): WorkflowClientInterceptor {
    return {
      start: (input, next) => this.guard(() => next(input)),
      signal: (input, next) => this.guard(() => next(input)),
      signalWithStart: (input, next) => this.guard(() => next(input)),
      startUpdate: (input, next) => this.guard(() => next(input)),
      startUpdateWithStart: (input, next) => this.guard(() => next(input)),
      query: (input, next) => this.guard(() => next(input)),
      describe: (input, next) => this.guard(() => next(input)),
      terminate: (input, next) => this.guard(() => next(input)),
      cancel: (input, next) => this.guard(() => next(input)),
    };
  }
}
