import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

const shebangWords = (): string[] => readFileSync(MAIN, "utf8").split("\n", 1)[0]!.split(/\s+/);

/** The Node flags cli/main.ts's shebang runs with, for callers that start it with process.execPath. */
export function cliNodeFlags(): string[] {
  return shebangWords().filter((w) => w.startsWith("--"));
}

/** The environment cli/main.ts's shebang sets (`NAME=VALUE` words before `node`), for the same callers. */
export function cliNodeEnv(): Record<string, string> {
  return Object.fromEntries(
    shebangWords()
      .filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w))
      .map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]),
  );
}

export const CLI_MAIN = MAIN;
