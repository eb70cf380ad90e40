import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

/** The Node flags cli/main.ts's shebang runs with, for callers that start it with process.execPath. */
export function cliNodeFlags(): string[] {
  const shebang = readFileSync(MAIN, "utf8").split("\n", 1)[0]!;
  return shebang.split(/\s+/).filter((w) => w.startsWith("--"));
}

export const CLI_MAIN = MAIN;
