import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { MEMORY_TRACE_ENV, startMemoryTrace, type MemorySample } from "../../../src/report/memory-trace.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("memory trace", () => {
  it("is off unless the environment names a file", () => {
    expect(startMemoryTrace({})).toBeUndefined();
  });

  it("writes this process's memory split, one JSON line a sample, until stopped", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "memory-trace-"));
    dirs.push(dir);
    const file = path.join(dir, "trace.jsonl");
    const stop = startMemoryTrace({ [MEMORY_TRACE_ENV]: file, [`${MEMORY_TRACE_ENV}_INTERVAL_MS`]: "20" })!;
    // something to see: 8 MiB outside the V8 heap, held across samples
    const held = Buffer.alloc(8 * 2 ** 20, 1);
    await sleep(150);
    stop();
    const samples = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as MemorySample);
    expect(samples.length).toBeGreaterThanOrEqual(3);
    const last = samples.at(-1)!;
    expect(last.heapUsed).toBeGreaterThan(0);
    expect(last.heapTotal).toBeGreaterThanOrEqual(last.heapUsed);
    expect(last.external).toBeGreaterThanOrEqual(held.length);
    expect(last.rss).toBe(last.heapTotal + last.external + last.v8Malloced + last.native);
    if (existsSync("/proc/self/status")) expect(last.hwm).toBeGreaterThanOrEqual(last.rss * 0.9);
    for (let i = 1; i < samples.length; i++) {
      expect(samples[i]!.t).toBeGreaterThanOrEqual(samples[i - 1]!.t);
      expect(samples[i]!.cpuMs).toBeGreaterThanOrEqual(samples[i - 1]!.cpuMs);
    }
    expect(last.cpuMs).toBeGreaterThan(0);
    // stopped: no more samples
    const lines = readFileSync(file, "utf8").length;
    await sleep(80);
    expect(readFileSync(file, "utf8").length).toBe(lines);
  });
});
