import { Command, Option } from "commander";
import { CrdBackupError } from "../../src/errors.ts";
import { readDrillReport } from "../../src/ui/drills.ts";
import { journalProvider } from "../../src/ui/journal.ts";
import { startUi } from "../../src/ui/server.ts";
import {
  addIdentityOptions,
  addStorageOptions,
  collect,
  contentStorageFrom,
  loggerFrom,
  positiveInt,
  type CommonFlags,
  type IdentityFlags,
  type StorageFlags,
} from "../options.ts";
import { printLines } from "../output.ts";
import type { RunContext } from "../run.ts";
import { favourMemory } from "../gc.ts";

/** The default address: this machine only, a port no other crd-backup server uses (metrics: 9464). */
export const DEFAULT_LISTEN = "127.0.0.1:8087";

type Flags = Pick<CommonFlags, "logLevel"> &
  StorageFlags &
  IdentityFlags & { listen: string; pageSize: number; keepOpen: number; drillReport?: string[] };

/** host:port or [ipv6]:port; a bare :port listens on every address (and so needs the token). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new CrdBackupError(
      "USAGE",
      `--listen "${value}": use HOST:PORT, e.g. 127.0.0.1:8087 (port 0 picks a free one)`,
    );
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** The storage flags a pasted restore command needs to reach the same location (never credentials). */
function storageArgs(location: string, flags: StorageFlags): string[] {
  const args = ["--storage", location];
  if (flags.s3Endpoint) args.push("--s3-endpoint", flags.s3Endpoint);
  if (flags.s3Region) args.push("--s3-region", flags.s3Region);
  if (flags.s3PathStyle === false) args.push("--no-s3-path-style");
  return args;
}

export function uiCommand(ctx: RunContext): Command {
  const cmd = new Command("ui").description(
    "a read-only web view of a storage location: clusters, timelines, snapshots and points in time to browse, every object's journal history with diffs, restore commands to copy",
  );
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  cmd
    .option(
      "--listen <host:port>",
      "where to serve; on an address other than loopback every request needs the token printed at start",
      DEFAULT_LISTEN,
    )
    .option("--page-size <n>", "rows per page (objects, namespaces)", positiveInt("--page-size"), 100)
    .option(
      "--keep-open <n>",
      "snapshots and points in time kept browsable on local disk at once",
      positiveInt("--keep-open"),
      10,
    )
    .option(
      "--drill-report <file>",
      "a report written by drill --report, shown on the fleet page (repeatable)",
      collect,
    )
    .addOption(
      new Option("--log-level <level>", "log detail on stderr")
        .choices(["debug", "info", "warn", "error"])
        .default("info"),
    );
  cmd.action(async (flags: Flags) => {
    favourMemory();
    const { host, port } = parseListen(flags.listen);
    const drills = await Promise.all((flags.drillReport ?? []).map(readDrillReport));
    const storage = await contentStorageFrom(flags);
    const log = loggerFrom({ output: "text", logLevel: flags.logLevel });
    const server = await startUi(storage, {
      host,
      port,
      commands: { storageArgs: storageArgs(storage.location, flags), identityFiles: flags.identity ?? [] },
      pageSize: flags.pageSize,
      maxOpen: flags.keepOpen,
      drills,
      history: (cache) => journalProvider(storage, cache, log),
      log,
    });
    printLines([
      `crd-backup ui: ${storage.location}, read-only, at ${server.url}`,
      ...(server.token
        ? ["every request needs the token in that address (then a cookie) or Authorization: Bearer <token>"]
        : []),
    ]);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await server.close();
  });
  return cmd;
}
