/**
 * Point-in-time replay at scale, without a cluster: a base snapshot of --keys objects and a journal
 * of --events changes to them (puts of ~--body-byte bodies, one delete in 20), written with the
 * real ArchiveWriter and SegmentBuilder into a local-directory storage, then replayed by the real
 * `--at now` path (plan, read and check every segment, spill, rewrite the base, verify) in a child
 * process started with the CLI's Node flags, whose wall time and peak RSS are reported.
 *
 *   node bench/replay.ts [--events 1000000] [--keys 100000] [--body 1024] [--segment-events 20000]
 *                        [--dir DIR] [--keep]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { cliNodeFlags } from "../cli/node-flags.ts";
import { archiveFields, serializeManifest, type Manifest } from "../src/archive/manifest.ts";
import { ArchiveWriter } from "../src/archive/writer.ts";
import { SegmentBuilder } from "../src/journal/segment-writer.ts";
import { openSource } from "../src/source/open.ts";
import { archiveKey, manifestKey } from "../src/storage/layout.ts";
import { LocalBackend } from "../src/storage/local.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    keys: { type: "string", default: "100000" },
    body: { type: "string", default: "1024" },
    "segment-events": { type: "string", default: "20000" },
    dir: { type: "string" },
    keep: { type: "boolean", default: false },
    replay: { type: "string" },
  },
});

const GROUP = "bench.example.com";
const CLUSTER = "bench-cluster";
const BASE = "20261203T050000Z-00000000";
const NAMESPACES = 10;

const nameOf = (k: number) => `item-${String(k).padStart(7, "0")}`;
const nsOf = (k: number) => `ns-${k % NAMESPACES}`;

function body(k: number, version: number, size: number): Buffer {
  const head = `{"apiVersion":"${GROUP}/v1","kind":"Item","metadata":{"name":"${nameOf(k)}","namespace":"${nsOf(k)}"},"spec":{"version":${version},"big":9223372036854775807,"pad":"`;
  const tail = `"}}`;
  return Buffer.from(head + "x".repeat(Math.max(0, size - head.length - tail.length)) + tail);
}

async function generate(
  storage: LocalBackend,
  o: { events: number; keys: number; body: number; perSegment: number },
) {
  const started = new Date("2026-12-03T05:00:00.000Z");
  const writer = new ArchiveWriter(BASE, { mtime: started });
  const upload = storage.write(archiveKey(BASE), writer.stream);
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `items.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { plural: "items", kind: "Item" },
      versions: [{ name: "v1", served: true, storage: true }],
    },
  };
  await writer.addCrd(`items.${GROUP}`, Buffer.from(JSON.stringify(crd)));
  let bytes = 0;
  for (let k = 0; k < o.keys; k++) {
    const size = await writer.addObject(
      { group: GROUP, version: "v1", plural: "items", namespace: nsOf(k), name: nameOf(k) },
      body(k, 0, o.body),
      { uid: `uid-${k}` },
    );
    bytes += size;
  }
  for (let n = 0; n < NAMESPACES; n++) {
    await writer.addNamespace(
      `ns-${n}`,
      Buffer.from(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns-${n}"}}`),
    );
  }
  const totals = await writer.finish();
  await upload;
  const finishedAt = new Date(started.getTime() + 1000);
  const manifest: Manifest = {
    toolVersion: "bench",
    snapshotId: BASE,
    status: "complete",
    cluster: { uid: CLUSTER, server: "https://bench.invalid", serverVersion: "v1.36.4" },
    startedAt: started.toISOString(),
    finishedAt: finishedAt.toISOString(),
    options: {},
    resources: [
      {
        group: GROUP,
        version: "v1",
        plural: "items",
        kind: "Item",
        namespaced: true,
        storageVersion: "v1",
        servedVersions: ["v1"],
        count: o.keys,
        bytes,
        listResourceVersion: "1",
        consistent: true,
        errors: [],
      },
    ],
    namespaceErrors: [],
    ...archiveFields(totals),
  };
  await storage.createExclusive(manifestKey(BASE), Buffer.from(serializeManifest(manifest)));

  // the journal: one event a millisecond after the base, segments of perSegment events
  let prev: string | null = null;
  let seq = 0;
  let journalBytes = 0;
  for (let first = 0; first < o.events; first += o.perSegment) {
    const b = new SegmentBuilder();
    const last = Math.min(o.events, first + o.perSegment);
    for (let i = first; i < last; i++) {
      const k = (i * 7919) % o.keys; // spread over every key
      const t = new Date(finishedAt.getTime() + i + 1).toISOString();
      const key = {
        kind: "object" as const,
        group: GROUP,
        version: "v1",
        plural: "items",
        namespace: nsOf(k),
        name: nameOf(k),
      };
      if (i % 20 === 19) b.add({ t, op: "delete", ...key, uid: `uid-${k}`, rv: String(i + 2) });
      else b.add({ t, op: "put", ...key, uid: `uid-${k}`, rv: String(i + 2), body: body(k, i + 1, o.body) });
    }
    const seg = await b.encode(
      {
        cluster: CLUSTER,
        base: BASE,
        seq: ++seq,
        prev,
        from: new Date(finishedAt.getTime() + first),
        to: new Date(finishedAt.getTime() + last),
      },
      { [`items.${GROUP}/v1`]: String(last + 1) },
    );
    await storage.write(seg.key, Readable.from([seg.bytes]));
    journalBytes += seg.bytes.length;
    prev = seg.sha256;
  }
  return { baseBytes: totals.size, journalBytes, segments: seq };
}

/** The measured part, in its own process so its peak RSS is the replay's alone. */
async function replay(dir: string) {
  const storage = new LocalBackend(dir);
  const t0 = performance.now();
  await using snapshot = await openSource(storage, { at: "now" });
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      seconds,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      objects: snapshot.manifest.counts.objects,
      archiveBytes: snapshot.manifest.archive.size,
      pointInTime: (snapshot.manifest as { pointInTime?: object }).pointInTime,
    }),
  );
}

if (values.replay) {
  await replay(values.replay);
} else {
  const o = {
    events: Number(values.events),
    keys: Number(values.keys),
    body: Number(values.body),
    perSegment: Number(values["segment-events"]),
  };
  const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), "crd-backup-bench-replay-"));
  const g0 = performance.now();
  const generated = await generate(new LocalBackend(dir), o);
  console.log(
    `generated in ${((performance.now() - g0) / 1000).toFixed(1)} s: base of ${o.keys} objects (${(generated.baseBytes / 2 ** 20).toFixed(1)} MiB), ` +
      `${o.events} events of ~${o.body} B in ${generated.segments} segments (${(generated.journalBytes / 2 ** 20).toFixed(1)} MiB) in ${dir}`,
  );
  const child = spawnSync(process.execPath, [...cliNodeFlags(), import.meta.filename, "--replay", dir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (child.status !== 0) throw new Error(`replay failed (exit ${child.status})`);
  const r = JSON.parse(child.stdout) as {
    seconds: number;
    maxRssMiB: number;
    objects: number;
    archiveBytes: number;
  };
  console.log(
    `replay --at now: ${r.seconds.toFixed(1)} s (${Math.round(o.events / r.seconds)} events/s), peak RSS ${r.maxRssMiB.toFixed(0)} MiB, ` +
      `${r.objects} objects at T, archive ${(r.archiveBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
