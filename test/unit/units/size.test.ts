import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { parseSize } from "../../../src/units/size.ts";

describe("parseSize", () => {
  it("reads sizes as Kubernetes quantities", () => {
    expect(parseSize("--x", "256Mi")).toBe(256 * 1024 * 1024);
    expect(parseSize("--x", "1Gi")).toBe(1024 ** 3);
    expect(parseSize("--x", "500M")).toBe(500e6);
    expect(parseSize("--x", "4096")).toBe(4096);
    for (const bad of ["", "0", "1MB", "-1Mi", "Mi"]) {
      expect(() => parseSize("--spool-size", bad)).toThrow(CrdBackupError);
    }
  });
});
