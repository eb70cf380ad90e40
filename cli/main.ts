#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { TOOL_VERSION } from "../src/version.ts";
import { exitCodeFor, EXIT } from "./exit-codes.ts";

export function buildProgram(): Command {
  const program = new Command("crd-backup")
    .description(
      "Back up and restore every Kubernetes custom resource to S3-compatible storage or a local directory.",
    )
    .version(TOOL_VERSION, "-V, --version")
    .showHelpAfterError("(run crd-backup --help for usage)")
    .exitOverride();
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed help, the version, or the usage error
      process.exitCode = e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    process.stderr.write(`crd-backup: ${(e as Error).message.split("\n")[0]}\n`);
    process.exitCode = exitCodeFor(e);
  }
}

await main(process.argv);
