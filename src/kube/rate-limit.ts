import { setTimeout as sleep } from "node:timers/promises";

/**
 * A token bucket: `burst` requests at once, then `qps` a second. Shared by every request of one
 * client, so --qps bounds the load crd-backup puts on the API server whatever --concurrency is.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(qps: number, burst: number) {
    this.qps = qps;
    this.burst = Math.max(1, burst);
    this.tokens = this.burst;
    this.last = performance.now();
  }

  /** Resolves when the caller may send; callers are served in arrival order. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (!(this.qps > 0)) return Promise.resolve(); // 0 or less: unlimited
    const turn = this.queue.then(() => this.take(signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(((1 - this.tokens) / this.qps) * 1000, undefined, { signal });
    }
  }
}
