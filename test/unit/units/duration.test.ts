import { describe, expect, it } from "vitest";
import { parseInterval } from "../../../src/units/duration.ts";

describe("parseInterval", () => {
  it("reads intervals as Go durations, m being minutes", () => {
    expect(parseInterval("--x", "5s")).toBe(5000);
    expect(parseInterval("--x", "500ms")).toBe(500);
    expect(parseInterval("--x", "1m30s")).toBe(90_000);
    expect(parseInterval("--x", "24h")).toBe(86_400_000);
    expect(parseInterval("--x", "7d")).toBe(7 * 86_400_000);
    expect(parseInterval("--x", "1.5s")).toBe(1500);
    for (const bad of ["", "5", "s", "5 s", "-5s", "0s", "5y"]) {
      expect(() => parseInterval("--flush-interval", bad)).toThrow(/--flush-interval ".*": use a duration/);
    }
  });
});
