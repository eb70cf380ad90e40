import { Command, CommanderError } from "commander";
import { startMemoryTrace } from "../src/report/memory-trace.ts";
import { TOOL_VERSION } from "../src/version.ts";
import { changesCommand } from "./commands/changes.ts";
import { deleteCommand } from "./commands/delete.ts";
import { diffCommand } from "./commands/diff.ts";
import { drillCommand } from "./commands/drill.ts";
import { exportCommand } from "./commands/export.ts";
import { importCommand } from "./commands/import.ts";
import { historyCommand } from "./commands/history.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { keygenCommand } from "./commands/keygen.ts";
import { listCommand } from "./commands/list.ts";
import { modifiersCommand } from "./commands/modifiers.ts";
import { pruneCommand } from "./commands/prune.ts";
import { rbacCommand } from "./commands/rbac.ts";
import { recordCommand } from "./commands/record.ts";
import { rekeyCommand } from "./commands/rekey.ts";
import { restoreCommand } from "./commands/restore.ts";
import { scheduleCommand } from "./commands/schedule.ts";
import { snapshotCommand } from "./commands/snapshot.ts";
import { standbyCommand } from "./commands/standby.ts";
import { uiCommand } from "./commands/ui.ts";
import { verifyCommand } from "./commands/verify.ts";
import { EXIT, exitCodeFor, oneLine } from "./exit-codes.ts";
import type { RunContext } from "./run.ts";

/**
 * The name help and usage lines show: `kubectl crd-backup` when run as the kubectl plugin (the
 * package also installs its bin as `kubectl-crd_backup`, which kubectl finds on PATH).
 */
export function programName(argv1: string | undefined): string {
  return /(^|[/\\])kubectl-crd_backup(\.[a-z]+)?$/.test(argv1 ?? "") ? "kubectl crd-backup" : "crd-backup";
}

export function buildProgram(ctx: RunContext, name = "crd-backup"): Command {
  const program = new Command(name)
    .description(
      "Back up and restore every Kubernetes custom resource to S3-compatible storage or a local directory.",
    )
    .version(TOOL_VERSION, "-V, --version")
    .showHelpAfterError(`(run ${name} --help for usage)`)
    .enablePositionalOptions()
    .exitOverride();
  for (const cmd of [
    snapshotCommand(ctx),
    restoreCommand(ctx),
    listCommand(),
    inspectCommand(),
    verifyCommand(),
    diffCommand(ctx),
    pruneCommand(),
    deleteCommand(),
    scheduleCommand(ctx),
    drillCommand(ctx),
    exportCommand(ctx),
    modifiersCommand(ctx),
    rbacCommand(ctx),
    recordCommand(ctx),
    standbyCommand(ctx),
    historyCommand(ctx),
    changesCommand(ctx),
    keygenCommand(),
    rekeyCommand(ctx),
    importCommand(ctx),
    uiCommand(ctx),
  ]) {
    cmd.exitOverride().showHelpAfterError(`(run ${name} ${cmd.name()} --help for usage)`);
    program.addCommand(cmd);
  }
  return program;
}

async function main(argv: string[]): Promise<number> {
  startMemoryTrace(); // off unless CRD_BACKUP_MEMORY_TRACE names a file
  const controller = new AbortController();
  const ctx: RunContext = { signal: controller.signal, exitCode: EXIT.OK };
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130); // a second signal: stop now
    process.stderr.write(`crd-backup: ${signal}: stopping; nothing incomplete will be left visible\n`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // a reader that went away (`crd-backup changes | head`) has what it wanted: stop at once and
  // quietly, as SIGPIPE stops other tools. Output comes before a command's first write or after its
  // last, never between, so stopping here leaves nothing half-done.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(EXIT.OK);
  });
  try {
    await buildProgram(ctx, programName(argv[1])).parseAsync(argv);
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed the help, the version or the usage error already
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    process.stderr.write(`crd-backup: ${controller.signal.aborted ? "interrupted: " : ""}${oneLine(e)}\n`);
    return exitCodeFor(e);
  }
}

export async function run(argv: string[]): Promise<number> {
  return main(argv);
}
