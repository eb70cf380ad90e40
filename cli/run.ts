/** What the entry point hands every command: a signal that fires on SIGINT/SIGTERM, and where the exit code goes. */
export interface RunContext {
  signal: AbortSignal;
  exitCode: number;
}
