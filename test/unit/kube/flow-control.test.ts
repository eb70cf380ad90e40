import { describe, expect, it } from "vitest";
import { FlowControl } from "../../../src/kube/flow-control.ts";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** Runs `n` requests through the window one answer at a time, each taking `rtt` ms. */
async function answer(fc: FlowControl, c: ReturnType<typeof clock>, n: number, rtt: number, status = 200) {
  for (let i = 0; i < n; i++) {
    await fc.acquire();
    c.advance(rtt);
    fc.release(status, rtt);
  }
}

describe("adaptive flow control", () => {
  it("starts with the whole window: fast by default", () => {
    const fc = new FlowControl({ max: 16 });
    expect(fc.stats.window).toBe(16);
  });

  it("halves on 429 once per round trip and holds everyone until Retry-After has passed", async () => {
    const c = clock();
    const fc = new FlowControl({ max: 16, now: c.now });
    await answer(fc, c, 20, 10);
    await fc.acquire();
    await fc.acquire();
    fc.release(429, 10, 2);
    fc.release(429, 10, 2); // same round trip: no second halving
    expect(fc.stats.window).toBe(8);
    expect(fc.stats.lowestWindow).toBe(8);
    expect(fc.stats.throttled).toBe(2);
    // the clock is frozen, so an acquire now would wait for real time: check the pause instead
    const waited = Promise.race([
      fc.acquire().then(() => "went"),
      new Promise((r) => setTimeout(() => r("held"), 50)),
    ]);
    expect(await waited).toBe("held");
    expect(fc.stats.pausedMs).toBe(2000);
  });

  it("grows back additively while the server keeps up, never past max", async () => {
    const c = clock();
    const fc = new FlowControl({ max: 16, initial: 2, now: c.now });
    await answer(fc, c, 40, 10);
    const after40 = fc.stats.window;
    expect(after40).toBeGreaterThan(2);
    await answer(fc, c, 2000, 10);
    expect(fc.stats.window).toBe(16);
  });

  it("shrinks when answers slow down well past their long-run time (a queue at the server)", async () => {
    const c = clock();
    const fc = new FlowControl({ max: 32, now: c.now });
    await answer(fc, c, 300, 10);
    expect(fc.stats.window).toBe(32);
    await answer(fc, c, 30, 200);
    expect(fc.stats.window).toBeLessThan(32);
    expect(fc.stats.window).toBeGreaterThanOrEqual(1);
  });

  it("never lets more than the window in flight", async () => {
    const fc = new FlowControl({ max: 3 });
    let inFlight = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        await fc.acquire();
        peak = Math.max(peak, ++inFlight);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
        fc.release(200, 2);
      }),
    );
    expect(peak).toBe(3);
  });
});
