/**
 * The one concurrency limiter: at most `limit` tasks at once, waiters served in arrival order.
 * Three shapes of use share it: `run` (a call that waits for a slot and settles as the task does:
 * the recorder's re-lists), `submit`/`drain` (a producer streaming work from an archive never holds
 * more than `limit` bodies: restore, drill cleanup), and mapConcurrent (a list, fail-fast: snapshot).
 */
export class Limiter {
  readonly limit: number;
  #active = 0;
  #waiters: (() => void)[] = [];
  #failure: { error: unknown } | undefined;

  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }

  async #acquire(): Promise<void> {
    while (this.#active >= this.limit) await new Promise<void>((r) => this.#waiters.push(r));
    this.#active++;
  }

  #release(): void {
    this.#active--;
    this.#waiters.shift()?.();
  }

  /** Runs `task` once a slot is free; settles as the task does. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  /**
   * Starts `task` once a slot is free and returns without waiting for it to end. The first task
   * failure is kept: the next submit (which then starts nothing) or drain rethrows it.
   */
  async submit(task: () => Promise<unknown>): Promise<void> {
    await this.#acquire();
    if (this.#failure) {
      this.#release();
      throw this.#failure.error;
    }
    task()
      .catch((error: unknown) => {
        this.#failure ??= { error };
      })
      .finally(() => this.#release());
  }

  /** Waits for every submitted task to end; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.#active > 0) await new Promise<void>((r) => this.#waiters.push(r));
    // wake anyone else waiting so they observe the drained state
    for (const w of this.#waiters.splice(0)) w();
    if (this.#failure) throw this.#failure.error;
  }
}

/**
 * Runs `fn` over `items` with at most `limit` in flight (memory holds `limit` tasks, not one per
 * item); the first rejection rejects the whole at once, and no item starts after it.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const limiter = new Limiter(limit);
  const results = new Array<R>(items.length);
  let fail!: (error: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const all = (async () => {
    for (let i = 0; i < items.length; i++) {
      await limiter.submit(async () => {
        try {
          results[i] = await fn(items[i]!, i);
        } catch (e) {
          fail(e);
          throw e;
        }
      });
    }
    await limiter.drain();
  })();
  // the whole need not wait for tasks still running when one fails (the limiter keeps that failure too)
  await Promise.race([all, failed]);
  return results;
}
