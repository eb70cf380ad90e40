import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { CLI_MAIN, cliNodeEnv, cliNodeFlags } from "../../../cli/node-flags.ts";
import { MEMORY_TRACE_ENV, type MemorySample } from "../../../src/report/memory-trace.ts";

describe("CRD_BACKUP_MEMORY_TRACE", () => {
  it("makes any command write its memory split, with the shebang's flags and environment", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cli-memory-trace-"));
    try {
      const file = path.join(dir, "trace.jsonl");
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [...cliNodeFlags(), CLI_MAIN, "--version"],
        {
          env: { ...process.env, ...cliNodeEnv(), [MEMORY_TRACE_ENV]: file },
        },
      );
      expect(stdout).toMatch(/\d+\.\d+\.\d+/); // the trace goes to its file, never to stdout
      const samples = readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as MemorySample);
      // one when it starts, one at exit
      expect(samples.length).toBeGreaterThanOrEqual(2);
      expect(samples.at(-1)!.hwm).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
