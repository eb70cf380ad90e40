import { describe, expect, it } from "vitest";
import { Limiter, mapConcurrent } from "../../src/concurrency.ts";

/** A task that ends when told to, and records how many tasks ran at once. */
function gauge() {
  let now = 0;
  const state = { max: 0, started: [] as number[] };
  const releases = new Map<number, (fail?: Error) => void>();
  const task = (n: number) => async () => {
    now++;
    state.max = Math.max(state.max, now);
    state.started.push(n);
    try {
      await new Promise<void>((resolve, reject) => releases.set(n, (e) => (e ? reject(e) : resolve())));
      return n;
    } finally {
      now--;
    }
  };
  const release = (n: number, fail?: Error) => releases.get(n)!(fail);
  return { state, task, release, running: () => now };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("Limiter.run: a call that waits for a slot", () => {
  it("runs at most `limit` at once, in arrival order, and settles as the task does", async () => {
    const g = gauge();
    const limiter = new Limiter(2);
    const results = [0, 1, 2, 3].map((n) =>
      limiter.run(g.task(n)).then(
        (value) => ({ value }),
        (error: Error) => ({ error: error.message }),
      ),
    );
    await tick();
    expect(g.state.started).toEqual([0, 1]);
    g.release(1);
    await tick();
    expect(g.state.started).toEqual([0, 1, 2]);
    g.release(0, new Error("zero failed"));
    g.release(2);
    await tick();
    g.release(3);
    expect(await Promise.all(results)).toEqual([
      { error: "zero failed" },
      { value: 1 },
      { value: 2 },
      { value: 3 },
    ]);
    expect(g.state.max).toBe(2);
  });

  it("treats a limit below 1 as 1", async () => {
    const g = gauge();
    const limiter = new Limiter(0);
    expect(limiter.limit).toBe(1);
    const done = Promise.all([limiter.run(g.task(0)), limiter.run(g.task(1))]);
    await tick();
    expect(g.state.started).toEqual([0]);
    g.release(0);
    await tick();
    g.release(1);
    expect(await done).toEqual([0, 1]);
  });
});

describe("Limiter.submit and drain: a producer that never holds more than `limit` tasks", () => {
  it("submit returns once the task started, waiting while every slot is taken; drain waits for all", async () => {
    const g = gauge();
    const limiter = new Limiter(2);
    await limiter.submit(g.task(0));
    await limiter.submit(g.task(1));
    let third = false;
    const submitting = limiter.submit(g.task(2)).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    g.release(0);
    await submitting;
    expect(g.state.started).toEqual([0, 1, 2]);
    let drained = false;
    const draining = limiter.drain().then(() => (drained = true));
    g.release(1);
    await tick();
    expect(drained).toBe(false);
    g.release(2);
    await draining;
    expect(g.running()).toBe(0);
    expect(g.state.max).toBe(2);
  });

  it("keeps the first failure: the next submit starts nothing and rethrows it, drain too", async () => {
    const g = gauge();
    const limiter = new Limiter(1);
    await limiter.submit(g.task(0));
    g.release(0, new Error("first"));
    await expect(limiter.submit(g.task(1))).rejects.toThrow("first");
    expect(g.state.started).toEqual([0]);
    await expect(limiter.drain()).rejects.toThrow("first");
  });

  it("drain rethrows a failure of a task still running when it was called", async () => {
    const g = gauge();
    const limiter = new Limiter(3);
    await limiter.submit(g.task(0));
    await limiter.submit(g.task(1));
    const draining = limiter.drain();
    g.release(0);
    g.release(1, new Error("late"));
    await expect(draining).rejects.toThrow("late");
  });
});

describe("mapConcurrent", () => {
  it("keeps the order of the items, at most `limit` in flight", async () => {
    let now = 0;
    let max = 0;
    const out = await mapConcurrent([5, 1, 4, 2, 3], 2, async (n, i) => {
      max = Math.max(max, ++now);
      await new Promise((r) => setTimeout(r, n));
      now--;
      return `${i}:${n}`;
    });
    expect(out).toEqual(["0:5", "1:1", "2:4", "3:2", "4:3"]);
    expect(max).toBe(2);
    expect(await mapConcurrent([], 4, async () => 1)).toEqual([]);
  });

  it("rejects with the first failure without waiting for the rest, and starts no more items", async () => {
    const g = gauge();
    const started: number[] = [];
    const all = mapConcurrent([0, 1, 2, 3], 2, (n) => {
      started.push(n);
      return g.task(n)();
    });
    await tick();
    g.release(0, new Error("zero"));
    await expect(all).rejects.toThrow("zero");
    expect(g.running()).toBe(1); // item 1 is still running: the whole did not wait for it
    g.release(1);
    await tick();
    expect(started).toEqual([0, 1]);
  });
});
