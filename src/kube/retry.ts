import { setTimeout as sleep } from "node:timers/promises";
import { CrdBackupError, KubeApiError } from "../errors.ts";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 200, maxDelayMs: 15_000 };

const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/** A failure another attempt may cure: throttling, a server error, a dropped or slow connection. */
export function isTransient(e: unknown, attempt = 0): boolean {
  // a 401 is retried once: a cached token may have expired a moment ago (KubeClient then asks afresh)
  if (e instanceof KubeApiError) return TRANSIENT_STATUS.has(e.status) || (e.status === 401 && attempt === 0);
  // a TLS or DNS failure is permanent; a reset, refusal or time-out may pass
  const code = e instanceof CrdBackupError ? e.context["cause"] : (e as { code?: string } | undefined)?.code;
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}

/** Exponential backoff with full jitter; a server's Retry-After is a floor, not a suggestion. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterSeconds?: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  const jittered = Math.random() * ceiling;
  const floor = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : 0;
  return Math.max(floor, jittered);
}

export async function withRetries<T>(
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (n + 1 >= policy.attempts || !isTransient(e, n) || signal?.aborted) throw e;
      const retryAfter = e instanceof KubeApiError ? e.retryAfterSeconds : undefined;
      await sleep(backoffDelay(policy, n, retryAfter), undefined, { signal });
    }
  }
}
