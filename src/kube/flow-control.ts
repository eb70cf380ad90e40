import { setTimeout as sleep } from "node:timers/promises";

/**
 * Adaptive flow control for requests to one API server: how many may be in flight at once is
 * learnt from the server's answers instead of fixed by a flag. The API server's own priority and
 * fairness is the authority: when it is saturated it queues requests (latency rises) and then
 * rejects them with 429 and Retry-After. So the window
 * - halves on a 429 (at most once per round trip) and holds every request until Retry-After has
 *   passed;
 * - shrinks when the recent round trip grows well past the long-run one (a queue is building);
 * - grows by about one per window of answers otherwise (additive increase).
 * The latency rule is the gradient of Netflix's concurrency-limits (Gradient2): when the recent RTT
 * passes tolerance × the long-run RTT, the window scales by their ratio (at least by half).
 */
export interface FlowControlOptions {
  /** Window at start: start fast. */
  initial?: number;
  /** Never more in flight than this (the connection pool's size). */
  max: number;
  min?: number;
  /** How much the recent RTT may exceed the long-run RTT before the window shrinks. */
  tolerance?: number;
  now?: () => number;
}

export interface FlowControlStats {
  window: number;
  /** The smallest the window has been: how far the server pushed back. */
  lowestWindow: number;
  inFlight: number;
  throttled: number;
  /** Milliseconds requests spent waiting for Retry-After pauses, summed over pauses (not requests). */
  pausedMs: number;
}

export class FlowControl {
  private limit: number;
  private lowest: number;
  private readonly max: number;
  private readonly min: number;
  private readonly tolerance: number;
  private readonly now: () => number;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private pausedUntil = 0;
  private lastDecrease = -Infinity;
  private shortRtt = 0;
  private longRtt = 0;
  private samples = 0;
  private throttled = 0;
  private pausedMs = 0;

  constructor(options: FlowControlOptions) {
    this.max = Math.max(1, options.max);
    this.min = Math.max(1, Math.min(options.min ?? 1, this.max));
    this.limit = Math.min(this.max, Math.max(this.min, options.initial ?? this.max));
    this.lowest = this.limit;
    this.tolerance = options.tolerance ?? 2;
    this.now = options.now ?? (() => performance.now());
  }

  get stats(): FlowControlStats {
    return {
      window: Math.floor(this.limit),
      lowestWindow: Math.floor(this.lowest),
      inFlight: this.inFlight,
      throttled: this.throttled,
      pausedMs: Math.round(this.pausedMs),
    };
  }

  /** Waits for a place in the window (and for any Retry-After pause); call release() after. */
  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const pause = this.pausedUntil - this.now();
      if (pause > 0) {
        await sleep(pause, undefined, { signal });
        continue;
      }
      if (this.inFlight < Math.floor(this.limit)) {
        this.inFlight++;
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal!.reason);
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiters.push(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
  }

  /**
   * The answer to a request: its status (0 when no answer came), how long it took, and the
   * server's Retry-After in seconds if it gave one.
   */
  release(status: number, rttMs: number, retryAfterSeconds?: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const now = this.now();
    if (status === 429 || (status === 503 && retryAfterSeconds !== undefined)) {
      this.throttled++;
      if (now - this.lastDecrease >= Math.max(this.shortRtt, 1)) {
        this.limit = Math.max(this.min, this.limit / 2);
        this.lowest = Math.min(this.lowest, this.limit);
        this.lastDecrease = now;
      }
      const until = now + Math.max(retryAfterSeconds ?? 1, 0) * 1000;
      if (until > this.pausedUntil) {
        this.pausedMs += until - Math.max(now, this.pausedUntil);
        this.pausedUntil = until;
      }
    } else if (status >= 200 && status < 500) {
      this.observe(rttMs);
    }
    this.wake();
  }

  private observe(rttMs: number): void {
    this.samples++;
    if (this.samples === 1) {
      this.shortRtt = this.longRtt = rttMs;
    } else {
      this.shortRtt += (rttMs - this.shortRtt) / 10;
      this.longRtt += (rttMs - this.longRtt) / 300;
    }
    if (this.samples < 10) return; // too few answers to tell a queue from noise
    const now = this.now();
    const gradient = (this.tolerance * this.longRtt) / this.shortRtt;
    if (gradient < 1) {
      // a queue is building at the server: shrink, at most once per round trip
      if (now - this.lastDecrease >= this.shortRtt) {
        this.limit = Math.max(this.min, this.limit * Math.max(0.5, gradient));
        this.lowest = Math.min(this.lowest, this.limit);
        this.lastDecrease = now;
      }
    } else {
      // the server keeps up: about one more per window of answers
      this.limit = Math.min(this.max, this.limit + 1 / this.limit);
    }
  }

  private wake(): void {
    // each woken waiter re-checks the window and takes its place itself
    let free = Math.floor(this.limit) - this.inFlight;
    while (free-- > 0 && this.waiters.length) this.waiters.shift()!();
  }
}
