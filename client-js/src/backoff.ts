/** Reconnect delays: exponential, capped, with jitter. */
export interface BackoffOptions {
  /** Delay before the first reconnect attempt, in ms (default 500). */
  initialDelayMs?: number;
  /** Largest delay, in ms (default 20000). */
  maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /**
   * Share of the delay that is random, 0..1 (default 0.5): the delay is drawn uniformly
   * from `[d * (1 - jitter), d]`, so clients that lost the same server do not all come
   * back at the same instant.
   */
  jitter?: number;
}

/** The delay before reconnect attempt `attempt` (0 = the first after a loss). */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 20000;
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const base = Math.min(max, initial * Math.pow(factor, Math.min(attempt, 64)));
  return Math.round(base * (1 - jitter * random()));
}
