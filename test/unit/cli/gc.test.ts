import { spawnSync } from "node:child_process";
import v8 from "node:v8";
import { afterEach, describe, expect, it, vi } from "vitest";
import { favourMemory, LARGE_SOURCE_OBJECTS, saveMemoryFor } from "../../../cli/gc.ts";

describe("garbage collection by command", () => {
  afterEach(() => vi.restoreAllMocks());

  it("runs a restore of a large source with V8's memory saver, a smaller one with V8's defaults", () => {
    const set = vi.spyOn(v8, "setFlagsFromString").mockImplementation(() => undefined);
    saveMemoryFor(LARGE_SOURCE_OBJECTS - 1);
    expect(set).not.toHaveBeenCalled();
    saveMemoryFor(LARGE_SOURCE_OBJECTS);
    expect(set.mock.calls).toEqual([["--memory-saver-mode"]]);
  });

  it("gives the journal readers a heap that grows 25% past what is live, Buffers counted", () => {
    const set = vi.spyOn(v8, "setFlagsFromString").mockImplementation(() => undefined);
    favourMemory();
    expect(set.mock.calls.flat()).toEqual([
      "--heap-growing-percent=25",
      "--external-memory-accounted-in-global-limit",
    ]);
  });

  it("names flags this Node's V8 knows (Node refuses to start with an unknown one)", () => {
    // node refuses a V8 flag it does not know ("bad option") and exits non-zero
    const known = (flag: string) => spawnSync(process.execPath, [`--${flag}`, "-e", "0"]).status === 0;
    expect(known("no-such-v8-flag")).toBe(false);
    for (const flag of [
      "memory-saver-mode",
      "heap-growing-percent=25",
      "external-memory-accounted-in-global-limit",
    ])
      expect(known(flag), flag).toBe(true);
  });
});
