import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { CLI_MAIN, cliNodeFlags } from "../../../cli/node-flags.ts";

describe("a reader of stdout that goes away (`| head`)", () => {
  it("stops the CLI quietly with exit 0, not with a stack trace", async () => {
    const child = spawn(process.execPath, [...cliNodeFlags(), CLI_MAIN, "--help"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    // closed before the CLI has started: its first write to stdout fails with EPIPE
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(stderr).toBe("");
    expect(code).toBe(0);
  }, 60_000);
});
