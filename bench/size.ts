/**
 * Archive size against Velero's layout, on the same objects, measured in one run (issue 26).
 *
 * The baseline is what Velero stores for custom resources: each object's JSON as the API server
 * served it (uid, resourceVersion, managedFields and all) at
 * `resources/<plural>.<group>/namespaces/<ns>/<name>.json` and again under
 * `resources/<plural>.<group>/v1-preferredversion/...`, the two members one after the other as
 * Velero's item backupper writes them, in a ustar stream gzipped at level 6 (Go's default; Node's
 * zlib at the same level). crd-backup's archives are written by the real ArchiveWriter from the
 * same objects cleaned by the real cleaner, in format version 3 (the default) and 1.
 *
 * The split of a version-3 archive is measured by compressing each part alone with the writer's
 * settings: the index (hashes and names), the tar headers, and the bodies. The hashes' floor is
 * 32 bytes per entry: random bytes do not compress.
 *
 *   node bench/size.ts [--objects N]
 */
import { parseArgs } from "node:util";
import { constants, gzipSync, zstdCompressSync } from "node:zlib";
import { ArchiveWriter } from "../src/archive/writer.ts";
import type { ArchiveVersion } from "../src/archive/format.ts";
import { cleanObject } from "../src/objects/clean.ts";
import { stringifyJson, type JsonObject } from "../src/json/json.ts";
import {
  benchObjects,
  certManagerObjects,
  prometheusOperatorObjects,
  type ServedObject,
} from "../fixtures/operators.ts";

const { values } = parseArgs({ options: { objects: { type: "string", default: "30000" } } });
const N = Number(values.objects);

const BLOCK = 512;
const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** A ustar member as Go's archive/tar writes one for Velero (mode 0755, a fixed mtime). */
function member(name: string, body: Buffer): Buffer[] {
  const h = Buffer.alloc(BLOCK);
  const octal = (v: number, digits: number) => `${v.toString(8).padStart(digits, "0")}\0`;
  h.write(name.slice(0, 100), 0);
  if (name.length > 100) h.write(name.slice(0, 155), 345); // good enough for size: names here fit
  h.write(octal(0o755, 7), 100);
  h.write(octal(0, 7), 108);
  h.write(octal(0, 7), 116);
  h.write(octal(body.length, 11), 124);
  h.write(octal(1764662400, 11), 136);
  h.write("0", 156);
  h.write("ustar\u000000", 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return [h, body, pad(body.length)];
}

function veleroLayout(objects: ServedObject[]): Buffer {
  const parts: Buffer[] = [...member("metadata/version", Buffer.from("1\n"))];
  for (const o of objects) {
    const body = Buffer.from(stringifyJson(o.served as JsonObject));
    const dir = `resources/${o.plural}.${o.group}`;
    parts.push(...member(`${dir}/namespaces/${o.namespace}/${o.name}.json`, body));
    parts.push(
      ...member(`${dir}/${o.version}-preferredversion/namespaces/${o.namespace}/${o.name}.json`, body),
    );
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return gzipSync(Buffer.concat(parts), { level: 6 });
}

async function crdBackup(objects: ServedObject[], formatVersion: ArchiveVersion) {
  const writer = new ArchiveWriter("20261207T080000Z-00000001", { formatVersion });
  const chunks: Buffer[] = [];
  const consumed = (async () => {
    for await (const chunk of writer.stream) chunks.push(chunk as Buffer);
  })();
  const bodies: Buffer[] = [];
  const namespaces = new Set<string>();
  for (const o of objects) {
    const { object, uid } = cleanObject(o.served as JsonObject);
    const body = Buffer.from(stringifyJson(object));
    bodies.push(body);
    namespaces.add(o.namespace);
    await writer.addObject(o, body, { uid });
  }
  for (const ns of namespaces) {
    const body = Buffer.from(JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }));
    bodies.push(body);
    await writer.addNamespace(ns, body);
  }
  const totals = await writer.finish();
  await consumed;
  return { bytes: Buffer.concat(chunks), totals, bodies };
}

const zstd1 = (b: Buffer) =>
  zstdCompressSync(b, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }).length;
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

async function measure(label: string, objects: ServedObject[]) {
  const velero = veleroLayout(objects).length;
  const v3 = await crdBackup(objects, 3);
  const v1 = await crdBackup(objects, 1);
  const entries = v3.totals.counts.crds + v3.totals.counts.namespaces + v3.totals.counts.objects;
  const hashFloor = 32 * entries;
  const size = v3.totals.size;
  // the split: each part compressed alone
  const bodies = zstd1(Buffer.concat(v3.bodies.map((b) => Buffer.concat([b, pad(b.length)]))));
  const sums = zstd1(await indexOf(v3.bytes));
  const headers = Math.max(0, size - bodies - sums);
  console.log(`\n${label}: ${objects.length} objects, ${entries} entries`);
  console.log(`  Velero layout (gzip 6, each object twice)   ${mb(velero)}`);
  console.log(
    `  crd-backup format 1 (gzip 1)                 ${mb(v1.totals.size)}  ${(v1.totals.size / velero).toFixed(2)}x`,
  );
  console.log(`  crd-backup format 3 (zstd 1, default)        ${mb(size)}  ${(size / velero).toFixed(2)}x`);
  console.log(
    `  format 3 less 32 bytes of SHA-256 per entry  ${mb(size - hashFloor)}  ${((size - hashFloor) / velero).toFixed(2)}x (target <= 0.50x)`,
  );
  console.log(
    `  split of format 3: index.sha256 ${mb(sums)} (of which hash floor ${mb(hashFloor)}), tar headers ~${mb(headers)}, bodies ${mb(bodies)}`,
  );
  return { label, velero, v1: v1.totals.size, v3: size, hashFloor };
}

/** index.sha256's bytes, read back from a version-3 archive (the last member). */
async function indexOf(archive: Buffer): Promise<Buffer> {
  const { readArchive } = await import("../src/archive/reader.ts");
  const lines: string[] = [];
  for await (const e of readArchive([archive])) {
    if (e.kind === "crd" || e.kind === "namespace" || e.kind === "object")
      lines.push(`${e.sha256}  ${e.name}\n`);
  }
  return Buffer.from(lines.join(""));
}

const perCrd = Math.max(1, Math.floor(N / 10));
const results = [
  await measure("bench snapshot objects (10 CRDs, ~2 KiB each)", benchObjects(perCrd)),
  await measure("cert-manager", certManagerObjects(Math.floor(N / 2))),
  await measure("prometheus-operator", prometheusOperatorObjects(Math.floor(N / 1.45))),
];
console.log("\nratio against the Velero layout: total / less hashes");
for (const r of results)
  console.log(
    `  ${r.label.padEnd(48)} ${(r.v3 / r.velero).toFixed(2)}x / ${((r.v3 - r.hashFloor) / r.velero).toFixed(2)}x`,
  );
