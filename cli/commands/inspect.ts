import { Command } from "commander";
import { expectedArchive } from "../../src/archive/manifest.ts";
import { readArchive } from "../../src/archive/reader.ts";
import { openArchive, resolveSnapshot } from "../../src/storage/snapshots.ts";
import {
  addCommonOptions,
  addStorageOptions,
  storageFrom,
  type CommonFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines, table } from "../output.ts";

export function inspectCommand(): Command {
  const cmd = new Command("inspect")
    .description("show a snapshot's resources, counts, sizes and errors")
    .argument("<snapshot>", 'a snapshot id, or "latest"');
  addStorageOptions(cmd);
  addCommonOptions(cmd);
  cmd.option("--objects", "also list every entry of the archive (reads and verifies the whole archive)");
  cmd.action(async (ref: string, flags: CommonFlags & StorageFlags & { objects?: boolean }) => {
    const storage = await storageFrom(flags);
    const { id, manifest: m } = await resolveSnapshot(storage, ref);
    const resources = m.resources.map((r) => ({
      group: r.group,
      version: r.version,
      resource: r.plural,
      kind: r.kind,
      namespaced: r.namespaced,
      count: r.count,
      bytes: r.bytes,
      storageVersion: r.storageVersion,
      servedVersions: r.servedVersions,
      consistent: r.consistent,
      errors: r.errors,
    }));
    const objects: { kind: string; entry: string; namespace?: string; name: string; size: number }[] = [];
    if (flags.objects) {
      for await (const e of readArchive(await openArchive(storage, id), expectedArchive(m))) {
        if (e.kind === "crd" || e.kind === "namespace" || e.kind === "object") {
          objects.push({
            kind: e.kind,
            entry: e.name,
            namespace: e.record.namespace,
            name: e.record.name,
            size: e.record.size,
          });
        }
      }
    }
    if (flags.output === "json") {
      printJson({
        id,
        status: m.status,
        formatVersion: m.formatVersion,
        toolVersion: m.toolVersion,
        cluster: m.cluster,
        startedAt: m.startedAt,
        finishedAt: m.finishedAt,
        options: m.options,
        counts: m.counts,
        archive: m.archive,
        resources,
        namespaceErrors: m.namespaceErrors,
        ...(flags.objects ? { objects } : {}),
      });
      return;
    }
    printLines([
      `snapshot ${id} (${m.status}) of cluster ${m.cluster.uid} (${m.cluster.server}, ${m.cluster.serverVersion})`,
      `taken ${m.startedAt} .. ${m.finishedAt} by crd-backup ${m.toolVersion}, format ${m.formatVersion}`,
      `${m.counts.crds} CRDs, ${m.counts.namespaces} namespaces, ${m.counts.objects} objects, archive ${formatBytes(m.archive.size)}`,
      "",
      ...table(
        ["RESOURCE", "VERSION", "SCOPE", "OBJECTS", "SIZE", "CONSISTENT", "ERRORS"],
        resources.map((r) => [
          `${r.resource}.${r.group}`,
          r.version,
          r.namespaced ? "Namespaced" : "Cluster",
          r.count,
          formatBytes(r.bytes),
          r.consistent ? "yes" : "no",
          r.errors.map((e) => `${e.reason}: ${e.message}`).join("; ") || "-",
        ]),
      ),
      ...m.namespaceErrors.map((e) => `namespace not captured: ${e.namespace}: ${e.reason}: ${e.message}`),
      ...(flags.objects
        ? [
            "",
            ...table(
              ["KIND", "ENTRY", "SIZE"],
              objects.map((o) => [o.kind, o.entry, formatBytes(o.size)]),
            ),
          ]
        : []),
    ]);
  });
  return cmd;
}
