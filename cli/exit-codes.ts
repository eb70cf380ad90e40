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
} as const;

export function exitCodeFor(e: unknown): number {
  if (isCrdBackupError(e) && e.code === "USAGE") return EXIT.USAGE;
  return EXIT.FAILURE;
}
