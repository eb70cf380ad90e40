import { isCrdBackupError } from "../src/errors.ts";

/** The exit codes crd-backup documents (README, "Exit codes"); every command maps to these. */
export const EXIT = {
  OK: 0,
  /** Something failed: nothing usable was produced. */
  FAILURE: 1,
  /** Bad usage: a wrong flag or argument. */
  USAGE: 2,
  /** Partial: the run finished, but some resources or objects could not be handled. */
  PARTIAL: 3,
  /** diff: the two sides differ. */
  DIFFERENT: 4,
} as const;

export function exitCodeFor(e: unknown): number {
  if (isCrdBackupError(e) && e.code === "USAGE") return EXIT.USAGE;
  return EXIT.FAILURE;
}

/** The error as one line: its message's first line, never a stack trace. */
export function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split("\n")[0]!.trim() || (e instanceof Error ? e.name : "unknown error");
}
