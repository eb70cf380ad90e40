import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { enablePrivateCompileCache } from "../../../cli/compile-cache.ts";

const made: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-ccache-"));
  made.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Records the folder Node would have been given, instead of enabling the cache in the test's process. */
const recorder = () => {
  const calls: (string | undefined)[] = [];
  return { calls, enable: (dir?: string) => (calls.push(dir), { directory: dir ?? "from-env" }) };
};

describe("the CLI's compile cache", () => {
  it("lives in a folder of the user's cache that only the user can change", () => {
    const home = tempDir();
    const { calls, enable } = recorder();
    const dir = enablePrivateCompileCache({ XDG_CACHE_HOME: home }, enable);
    expect(dir).toBe(path.join(home, "crd-backup", "node-compile-cache"));
    expect(calls).toEqual([dir]);
    expect(statSync(dir!).mode & 0o077).toBe(0);
  });

  it("is off where another account could write into it or its parent", () => {
    const home = tempDir();
    const { calls, enable } = recorder();
    enablePrivateCompileCache({ XDG_CACHE_HOME: home }, enable);
    chmodSync(path.join(home, "crd-backup"), 0o777);
    expect(enablePrivateCompileCache({ XDG_CACHE_HOME: home }, enable)).toBeUndefined();
    chmodSync(path.join(home, "crd-backup"), 0o755);
    chmodSync(path.join(home, "crd-backup", "node-compile-cache"), 0o775);
    expect(enablePrivateCompileCache({ XDG_CACHE_HOME: home }, enable)).toBeUndefined();
    expect(calls).toHaveLength(1);
  });

  it("is off where no folder can be made, and honours Node's own variables", () => {
    const home = tempDir();
    chmodSync(home, 0o500);
    const { calls, enable } = recorder();
    if (process.getuid?.() !== 0)
      expect(enablePrivateCompileCache({ XDG_CACHE_HOME: path.join(home, "ro") }, enable)).toBeUndefined();
    expect(enablePrivateCompileCache({ XDG_CACHE_HOME: "/dev/null/x" }, enable)).toBeUndefined();
    expect(enablePrivateCompileCache({ NODE_DISABLE_COMPILE_CACHE: "1" }, enable)).toBeUndefined();
    expect(enablePrivateCompileCache({ NODE_COMPILE_CACHE: "/somewhere" }, enable)).toBe("from-env");
    expect(calls).toEqual([undefined]);
  });
});
