/**
 * `history` of one object and `changes` over a one-hour window, at scale, without a cluster: a
 * base snapshot (the CRD and Namespaces, no objects) and one chain of --events changes spread over
 * --hours, written with the real ArchiveWriter and SegmentBuilder into a local directory (not
 * recorded from a live cluster: a million watch events would take the test apiserver hours). The
 * base holds the first --base-keys objects (all, by default: history then fetches and verifies a
 * base of 100,000 objects); the journal puts every object once, then updates them (spec, and every
 * fifth change status only), and one change in 20 deletes one (the next put recreates it). Both commands run through the built CLI
 * with default flags, under GNU time; wall time and peak RSS are printed against the 10 s / 250 MB
 * targets of issue 23.
 *
 *   npm run bench:history -- [--events 1000000] [--keys 100000] [--base-keys N] [--hours 24] [--body 512]
 *                            [--segment-events 20000] [--dir DIR] [--keep]
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { archiveFields, serializeManifest, type Manifest } from "../src/archive/manifest.ts";
import { ArchiveWriter } from "../src/archive/writer.ts";
import { SegmentBuilder } from "../src/journal/segment-writer.ts";
import { archiveKey, manifestKey } from "../src/storage/layout.ts";
import { LocalBackend } from "../src/storage/local.ts";
import { timeCli } from "./support.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    keys: { type: "string", default: "100000" },
    "base-keys": { type: "string" },
    hours: { type: "string", default: "24" },
    body: { type: "string", default: "512" },
    "segment-events": { type: "string", default: "20000" },
    dir: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});

const GROUP = "bench.example.com";
const CLUSTER = "bench-cluster";
const BASE = "20261203T050000Z-00000000";
const NAMESPACES = 10;
const STARTED = new Date("2026-12-03T05:00:00.000Z");
const FINISHED = new Date(STARTED.getTime() + 1000);

const nameOf = (k: number) => `item-${String(k).padStart(7, "0")}`;
const nsOf = (k: number) => `ns-${k % NAMESPACES}`;

function body(k: number, version: number, phase: number, size: number): Buffer {
  const head = `{"apiVersion":"${GROUP}/v1","kind":"Item","metadata":{"name":"${nameOf(k)}","namespace":"${nsOf(k)}","labels":{"app":"bench"}},"spec":{"version":${version},"big":9223372036854775807,"pad":"`;
  const tail = `"},"status":{"phase":${phase}}}`;
  return Buffer.from(head + "x".repeat(Math.max(0, size - head.length - tail.length)) + tail);
}

async function writeBase(storage: LocalBackend, keys: number, size: number): Promise<void> {
  const writer = new ArchiveWriter(BASE, { mtime: STARTED });
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
  for (let k = 0; k < keys; k++) {
    const ref = { group: GROUP, version: "v1", plural: "items", namespace: nsOf(k), name: nameOf(k) };
    bytes += await writer.addObject(ref, body(k, 0, 0, size), { uid: `uid-${k}-0` });
  }
  for (let n = 0; n < NAMESPACES; n++)
    await writer.addNamespace(
      `ns-${n}`,
      Buffer.from(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns-${n}"}}`),
    );
  const totals = await writer.finish();
  await upload;
  const manifest: Manifest = {
    toolVersion: "bench",
    snapshotId: BASE,
    status: "complete",
    cluster: { uid: CLUSTER, server: "https://bench.invalid", serverVersion: "v1.36.4" },
    startedAt: STARTED.toISOString(),
    finishedAt: FINISHED.toISOString(),
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
        count: keys,
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
}

async function writeJournal(
  storage: LocalBackend,
  o: { events: number; keys: number; body: number; perSegment: number; spanMs: number },
): Promise<{ bytes: number; segments: number }> {
  const step = o.spanMs / o.events;
  const timeOf = (i: number) => new Date(FINISHED.getTime() + Math.floor((i + 1) * step));
  const version = new Uint32Array(o.keys);
  const alive = new Uint8Array(o.keys);
  let prev: string | null = null;
  let seq = 0;
  let bytes = 0;
  let from = FINISHED;
  for (let first = 0; first < o.events; first += o.perSegment) {
    const b = new SegmentBuilder();
    const last = Math.min(o.events, first + o.perSegment);
    for (let i = first; i < last; i++) {
      // the first pass creates every object; then changes spread over every key
      const k = i < o.keys ? i : (i * 7919) % o.keys;
      const t = timeOf(i).toISOString();
      const key = {
        kind: "object" as const,
        group: GROUP,
        version: "v1",
        plural: "items",
        namespace: nsOf(k),
        name: nameOf(k),
      };
      const uid = `uid-${k}-${version[k]! >> 16}`;
      if (i >= o.keys && i % 20 === 19 && alive[k]) {
        alive[k] = 0;
        version[k] = ((version[k]! >> 16) + 1) << 16; // a new uid when it comes back
        b.add({ t, op: "delete", ...key, uid, rv: String(i + 2) });
        continue;
      }
      const v = ++version[k]!;
      // every fifth change touches status only
      const spec = i % 5 === 4 && alive[k] ? v - 1 : v;
      alive[k] = 1;
      b.add({
        t,
        op: "put",
        ...key,
        uid: `uid-${k}-${v >> 16}`,
        rv: String(i + 2),
        body: body(k, spec & 0xffff, v, o.body),
      });
    }
    const to = timeOf(last - 1);
    const seg = await b.encode(
      { cluster: CLUSTER, base: BASE, seq: ++seq, prev, from, to },
      { [`items.${GROUP}/v1`]: String(last + 1) },
    );
    await storage.write(seg.key, Readable.from([seg.bytes]));
    bytes += seg.bytes.length;
    prev = seg.sha256;
    from = to;
  }
  return { bytes, segments: seq };
}

const o = {
  events: Number(values.events),
  keys: Number(values.keys),
  body: Number(values.body),
  perSegment: Number(values["segment-events"]),
  spanMs: Number(values.hours) * 3_600_000,
};
const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), "crd-backup-bench-history-"));
const storage = new LocalBackend(dir);
const g0 = performance.now();
const baseKeys = values["base-keys"] === undefined ? o.keys : Number(values["base-keys"]);
await writeBase(storage, baseKeys, o.body);
const journal = await writeJournal(storage, o);
console.log(
  `generated in ${((performance.now() - g0) / 1000).toFixed(1)} s: a base of ${baseKeys} objects, ${o.events} events over ${o.keys} objects, ~${o.body} B bodies, ` +
    `${values.hours} h in ${journal.segments} segments (${(journal.bytes / 2 ** 20).toFixed(1)} MiB) in ${dir}`,
);

const report = (
  what: string,
  r: { seconds: number; peakRssMiB: number; cpuSeconds: number; stdout: string },
  lines: string,
) =>
  console.log(
    `${what}: ${r.seconds.toFixed(1)} s (CPU ${r.cpuSeconds.toFixed(1)} s), peak RSS ${r.peakRssMiB.toFixed(0)} MiB (targets 10 s, 250 MB) ${r.seconds <= 10 && r.peakRssMiB * 1.048576 <= 250 ? "ok" : "OVER"}; ${lines}`,
  );
console.log(
  `load average: ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(", ")} on ${os.availableParallelism()} cores`,
);
const target = Math.floor(o.keys / 2);
const h = await timeCli(
  ["history", `items.${GROUP}/${nameOf(target)}`, "-n", nsOf(target), "--storage", dir],
  {},
);
report(`history of ${nameOf(target)}`, h, `${h.stdout.trim().split("\n").length} versions and gaps`);
// the window in the middle of the chain
const since = new Date(FINISHED.getTime() + o.spanMs / 2);
const until = new Date(since.getTime() + 3_600_000);
const c = await timeCli(
  ["changes", "--since", since.toISOString(), "--until", until.toISOString(), "--storage", dir],
  {},
);
report("changes over one hour", c, c.stdout.split("\n")[0]!);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
