/**
 * At most `limit` tasks at once; `submit` waits for a free slot, so a producer streaming work
 * from an archive never holds more than `limit` bodies. The first task failure is rethrown by
 * `submit` or `drain`.
 */
export class Pool {
  private active = 0;
  private waiters: (() => void)[] = [];
  private failure: { error: unknown } | undefined;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }

  async submit(task: () => Promise<void>): Promise<void> {
    while (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure.error;
    this.active++;
    task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.active--;
        this.waiters.shift()?.();
      });
  }

  async drain(): Promise<void> {
    while (this.active > 0) await new Promise<void>((r) => this.waiters.push(r));
    // wake anyone else waiting so they observe the drained state
    for (const w of this.waiters.splice(0)) w();
    if (this.failure) throw this.failure.error;
  }
}
