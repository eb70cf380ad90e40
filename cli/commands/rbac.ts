import { Command, Option } from "commander";
import { CrdBackupError } from "../../src/errors.ts";
import { toYaml } from "../../src/export/yaml.ts";
import type { JsonValue } from "../../src/json/json.ts";
import { clusterRoleFor } from "../../src/rbac/discover.ts";
import {
  addFilterOptions,
  addKubeOptions,
  filtersFrom,
  kubeClientFrom,
  type FilterFlags,
  type KubeFlags,
} from "../options.ts";
import { printJson } from "../output.ts";
import type { RunContext } from "../run.ts";

type Flags = KubeFlags &
  FilterFlags & { output: "yaml" | "json"; restore?: boolean; record?: boolean; name?: string };

/**
 * deploy/ ships roles of these names with only the CRD and namespace rules (no "*": that would read
 * Secrets); a generated role patches over its namesake from an overlay (deploy/README.md).
 */
const SNAPSHOT_ROLE = "crd-backup-read";
const RESTORE_ROLE = "crd-backup-restore";
const RECORD_ROLE = "crd-backup-record";

export function rbacCommand(ctx: RunContext): Command {
  const cmd = new Command("rbac").description(
    "print the minimal ClusterRole for snapshots (or --restore) of the current cluster's CRDs",
  );
  addKubeOptions(cmd);
  addFilterOptions(cmd);
  cmd
    .option("--restore", "the role a restore needs (create and patch), not a snapshot's (get and list)")
    .option("--record", "the role `crd-backup record` needs (list and watch)")
    .option(
      "--name <name>",
      `the role's name (default: ${SNAPSHOT_ROLE}, ${RESTORE_ROLE} with --restore, ${RECORD_ROLE} with --record)`,
    )
    .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .action(async (flags: Flags) => {
      const filters = filtersFrom(flags);
      if (flags.restore && flags.record)
        throw new CrdBackupError("USAGE", "--restore and --record: choose one");
      const mode = flags.restore ? "restore" : flags.record ? "record" : "snapshot";
      const client = await kubeClientFrom(flags, 2);
      try {
        const { role, crds } = await clusterRoleFor(client, {
          name: flags.name ?? { snapshot: SNAPSHOT_ROLE, restore: RESTORE_ROLE, record: RECORD_ROLE }[mode],
          mode,
          filters,
          signal: ctx.signal,
        });
        if (crds === 0)
          process.stderr.write("crd-backup: note: no CRD matches; the role covers no resource\n");
        if (flags.output === "json") return printJson(role);
        process.stdout.write(
          `# crd-backup rbac: what ${mode} needs for ${crds} CRDs; regenerate when CRDs are added\n` +
            toYaml(role as unknown as JsonValue),
        );
      } finally {
        client.close();
      }
    });
  return cmd;
}
