import { Command } from "commander";
import { expectedArchive } from "../../src/archive/manifest.ts";
import { readArchive } from "../../src/archive/reader.ts";
import { openPlainArchive } from "../../src/crypto/archive.ts";
import { needsIdentity, openManifest, shortRecipient } from "../../src/crypto/manifest.ts";
import { listChains, summarizeChain } from "../../src/journal/chains.ts";
import { resolveSnapshot } from "../../src/storage/snapshots.ts";
import {
  addCommonOptions,
  addIdentityOptions,
  addStorageOptions,
  identitiesFrom,
  storageFrom,
  type CommonFlags,
  type IdentityFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines, table } from "../output.ts";

export function inspectCommand(): Command {
  const cmd = new Command("inspect")
    .description("show a snapshot's resources, counts, sizes and errors")
    .argument("<snapshot>", 'a snapshot id, or "latest"');
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  addCommonOptions(cmd);
  cmd.option("--objects", "also list every entry of the archive (reads and verifies the whole archive)");
  cmd.action(
    async (ref: string, flags: CommonFlags & StorageFlags & IdentityFlags & { objects?: boolean }) => {
      const keys = await identitiesFrom(flags);
      const storage = await storageFrom(flags);
      const { id, manifest: stored } = await resolveSnapshot(storage, ref);
      // the journal recorded after this snapshot, when it is a chain's base (keys alone say it)
      const chain = (await listChains(storage, stored.cluster.uid)).find((c) => c.base === id);
      const journal = chain ? summarizeChain(chain) : undefined;
      const journalLines = journal
        ? [
            "",
            `journal: ${journal.segments} segments, ${journal.from ?? "?"} .. ${journal.to}, recoverable with --at: ${journal.windows.map((w) => `${w.from} .. ${w.to}`).join(", ") || "none"}`,
            ...journal.gaps.map((g) => `gap ${g.from} .. ${g.to}: ${g.reason} (${g.resources.join(", ")})`),
            ...(journal.broken ? [`broken: ${journal.broken}`] : []),
          ]
        : [];
      if (stored.sealed && !keys) {
        if (flags.objects) throw needsIdentity(stored);
        const e = stored.encryption;
        if (flags.output === "json") {
          printJson({
            id,
            status: stored.status,
            formatVersion: stored.formatVersion,
            toolVersion: stored.toolVersion,
            cluster: { uid: stored.cluster.uid },
            startedAt: stored.startedAt,
            finishedAt: stored.finishedAt,
            encryption: { scheme: e.scheme, recipients: e.recipients },
            archive: e.stored,
            ...(journal ? { journal } : {}),
          });
        } else {
          printLines([
            `snapshot ${id} (${stored.status}) of cluster ${stored.cluster.uid}`,
            `taken ${stored.startedAt} .. ${stored.finishedAt} by crd-backup ${stored.toolVersion}, format ${stored.formatVersion}`,
            `encrypted to ${e.recipients.map(shortRecipient).join(", ")}: ${formatBytes(e.stored.size)} stored; give --identity to see its resources`,
            ...journalLines,
          ]);
        }
        return;
      }
      const m = await openManifest(stored, keys);
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
        const source = await openPlainArchive(storage, m, keys);
        for await (const e of readArchive(source.stream, expectedArchive(m))) {
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
          ...(m.encryption
            ? {
                encryption: {
                  scheme: m.encryption.scheme,
                  recipients: m.encryption.recipients,
                  stored: m.encryption.stored,
                },
              }
            : {}),
          resources,
          namespaceErrors: m.namespaceErrors,
          ...(flags.objects ? { objects } : {}),
          ...(journal ? { journal } : {}),
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
        ...journalLines,
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
    },
  );
  return cmd;
}
