import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CrdBackupError, KubeApiError } from "../../../src/errors.ts";
import { backoffDelay, isTransient, withRetries, type RetryPolicy } from "../../../src/kube/retry.ts";

// withRetries sleeps through node:timers/promises; the tests see each sleep and skip the wait,
// unless a test asks for the real timer
const timers = vi.hoisted(() => ({ real: false, sleeps: [] as number[] }));
vi.mock(import("node:timers/promises"), async (original) => {
  const real = await original();
  return {
    ...real,
    setTimeout: (async (ms: number, value: unknown, options?: { signal?: AbortSignal }) => {
      timers.sleeps.push(ms);
      if (timers.real) return real.setTimeout(ms, value, options);
      options?.signal?.throwIfAborted();
      return value;
    }) as typeof real.setTimeout,
  };
});

beforeEach(() => {
  timers.real = false;
  timers.sleeps = [];
});
afterEach(() => void vi.restoreAllMocks());

const api = (status: number, retryAfterSeconds?: number) =>
  new KubeApiError(status, `HTTP ${status}`, {
    method: "GET",
    path: "/apis/g/v1/widgets",
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  });

const withCode = (code: string) => Object.assign(new Error(code), { code });

describe("isTransient: which failures another attempt may cure", () => {
  it.each([429, 500, 502, 503, 504])("retries HTTP %i", (status) => {
    expect(isTransient(api(status))).toBe(true);
    expect(isTransient(api(status), 4)).toBe(true);
  });

  it.each([400, 403, 404, 405, 409, 410, 413, 422, 501])("does not retry HTTP %i", (status) => {
    expect(isTransient(api(status))).toBe(false);
  });

  it("retries a 401 once, on the first attempt only (a token that expired a moment ago)", () => {
    expect(isTransient(api(401), 0)).toBe(true);
    expect(isTransient(api(401))).toBe(true);
    expect(isTransient(api(401), 1)).toBe(false);
    expect(isTransient(api(401), 5)).toBe(false);
  });

  it.each([
    "ECONNRESET",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "EPIPE",
    "EAI_AGAIN",
    "UND_ERR_SOCKET",
    "ERR_STREAM_PREMATURE_CLOSE",
  ])("retries a connection failure %s, raw or wrapped as the cause of a CrdBackupError", (code) => {
    expect(isTransient(withCode(code))).toBe(true);
    expect(isTransient(new CrdBackupError("KUBE_UNREACHABLE", "no answer", { cause: code }))).toBe(true);
  });

  it.each([
    "ENOTFOUND", // a name that does not resolve
    "CERT_HAS_EXPIRED",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "ERR_TLS_CERT_ALTNAME_INVALID",
    "EACCES",
  ])("does not retry %s: a TLS or DNS failure is permanent", (code) => {
    expect(isTransient(withCode(code))).toBe(false);
    expect(isTransient(new CrdBackupError("KUBE_UNREACHABLE", "no answer", { cause: code }))).toBe(false);
  });

  it("does not retry anything else", () => {
    expect(isTransient(new Error("ECONNRESET"))).toBe(false); // a message is not a code
    expect(isTransient(new CrdBackupError("USAGE", "bad flag"))).toBe(false);
    // a CrdBackupError is judged by its context's cause, not by a code property
    expect(isTransient(Object.assign(new CrdBackupError("STORAGE", "x"), { code: "ECONNRESET" }))).toBe(
      false,
    );
    for (const e of [undefined, null, "ECONNRESET", 503, { code: 503 }]) expect(isTransient(e)).toBe(false);
  });
});

describe("backoffDelay: exponential backoff with full jitter", () => {
  const policy: RetryPolicy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 5_000 };

  it("is a uniform pick below base * 2^attempt, capped at maxDelayMs", () => {
    const ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
    ceilings.forEach((ceiling, attempt) => {
      vi.spyOn(Math, "random").mockReturnValue(0);
      expect(backoffDelay(policy, attempt)).toBe(0);
      vi.spyOn(Math, "random").mockReturnValue(0.5);
      expect(backoffDelay(policy, attempt)).toBe(ceiling / 2);
      vi.spyOn(Math, "random").mockReturnValue(0.999999);
      expect(backoffDelay(policy, attempt)).toBeCloseTo(ceiling * 0.999999, 6);
    });
  });

  it("stays within [0, ceiling) on real random draws, and spreads over it", () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
      const draws = Array.from({ length: 400 }, () => backoffDelay(policy, attempt));
      for (const d of draws) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
      // jitter, not a fixed step: draws in both halves of the range
      expect(draws.some((d) => d < ceiling / 2)).toBe(true);
      expect(draws.some((d) => d >= ceiling / 2)).toBe(true);
    }
  });

  it("takes a server's Retry-After as a floor, even above maxDelayMs", () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(backoffDelay(policy, 0, 3)).toBe(3_000);
    expect(backoffDelay(policy, 0, 60)).toBe(60_000);
    expect(backoffDelay(policy, 0, 0)).toBe(0);
    // a longer jittered delay stands: Retry-After is not a suggestion to hurry
    vi.spyOn(Math, "random").mockReturnValue(0.75);
    expect(backoffDelay(policy, 8, 1)).toBe(3_750);
    expect(backoffDelay(policy, 8, 4)).toBe(4_000);
  });
});

describe("withRetries", () => {
  const policy: RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 1_000 };

  /** An attempt that fails with `errors` in turn, then answers "ok"; it records the attempt numbers. */
  function failing(...errors: unknown[]) {
    const seen: number[] = [];
    const attempt = async (n: number) => {
      seen.push(n);
      const e = errors[n];
      if (e !== undefined) throw e;
      return "ok";
    };
    return { attempt, seen };
  }

  it("answers at once when the first attempt succeeds", async () => {
    const { attempt, seen } = failing();
    await expect(withRetries(policy, undefined, attempt)).resolves.toBe("ok");
    expect(seen).toEqual([0]);
    expect(timers.sleeps).toEqual([]);
  });

  it("retries transient failures with growing, jittered sleeps, then answers", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { attempt, seen } = failing(api(503), withCode("ECONNRESET"), api(429));
    await expect(withRetries(policy, undefined, attempt)).resolves.toBe("ok");
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(timers.sleeps).toEqual([50, 100, 200]); // half of 100, 200, 400
  });

  it("gives up after `attempts` in all, rethrowing the last failure as it was", async () => {
    const last = api(500);
    const { attempt, seen } = failing(api(503), api(502), api(504), last, api(503));
    await expect(withRetries(policy, undefined, attempt)).rejects.toBe(last);
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(timers.sleeps).toHaveLength(3);
    for (const [n, ms] of timers.sleeps.entries()) expect(ms).toBeLessThan(100 * 2 ** n);
  });

  it("throws a permanent failure at once, without sleeping", async () => {
    const notFound = api(404);
    const { attempt, seen } = failing(notFound);
    await expect(withRetries(policy, undefined, attempt)).rejects.toBe(notFound);
    expect(seen).toEqual([0]);
    expect(timers.sleeps).toEqual([]);

    const tls = withCode("CERT_HAS_EXPIRED");
    await expect(withRetries(policy, undefined, failing(api(503), tls).attempt)).rejects.toBe(tls);
    expect(timers.sleeps).toHaveLength(1);
  });

  it("retries a 401 once: a second one is final", async () => {
    const second = api(401);
    const { attempt, seen } = failing(api(401), second);
    await expect(withRetries(policy, undefined, attempt)).rejects.toBe(second);
    expect(seen).toEqual([0, 1]);
    await expect(withRetries(policy, undefined, failing(api(401)).attempt)).resolves.toBe("ok");
  });

  it("sleeps at least as long as the server's Retry-After asks", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.01);
    const { attempt } = failing(api(429, 7), api(503, 2), api(503));
    await expect(withRetries(policy, undefined, attempt)).resolves.toBe("ok");
    expect(timers.sleeps).toEqual([7_000, 2_000, 4]); // the floors, then 1% of 400
  });

  it("with one attempt in all, never retries", async () => {
    const e = api(503);
    await expect(withRetries({ ...policy, attempts: 1 }, undefined, failing(e).attempt)).rejects.toBe(e);
    expect(timers.sleeps).toEqual([]);
  });

  it("does not retry once the signal is aborted", async () => {
    const controller = new AbortController();
    const e = api(503);
    const seen: number[] = [];
    const attempt = async (n: number) => {
      seen.push(n);
      controller.abort();
      throw e;
    };
    await expect(withRetries(policy, controller.signal, attempt)).rejects.toBe(e);
    expect(seen).toEqual([0]);
    expect(timers.sleeps).toEqual([]);
  });

  it("stops sleeping when the signal is aborted mid-sleep, with an AbortError", async () => {
    timers.real = true;
    vi.spyOn(Math, "random").mockReturnValue(0);
    const controller = new AbortController();
    const { attempt, seen } = failing(api(503, 600));
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await expect(withRetries(policy, controller.signal, attempt)).rejects.toMatchObject({
      name: "AbortError",
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(seen).toEqual([0]);
    expect(timers.sleeps).toEqual([600_000]);
  });
});
