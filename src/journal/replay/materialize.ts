/**
 * The state at T as a local archive (docs/format.md, "Replay" steps 4-6): the chain's segments are
 * read and checked in order into a ChangeSet (bodies spilled to disk), then the base is streamed
 * once and rewritten with the changes into an ordinary archive, in the order the format requires
 * (CRDs, objects, Namespaces, index). The result goes through the same verification as any
 * snapshot, so restore, diff, export and drill never learn where their entries came from.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import {
  archiveFields,
  parseManifest,
  plainManifest,
  serializeManifest,
  type ManifestResource,
  type PlainManifest,
} from "../../archive/manifest.ts";
import type { ArchiveEntry } from "../../archive/reader.ts";
import { ArchiveWriter } from "../../archive/writer.ts";
import { isJsonObject, parseJson, type JsonObject } from "../../json/json.ts";
import type { StorageBackend } from "../../storage/backend.ts";
import { CrdBackupError, SourceRefusedError } from "../../errors.ts";
import { TOOL_VERSION } from "../../version.ts";
import { readStoredSegment } from "../segment-io.ts";
import { segmentKey } from "../segment-key.ts";
import type { ChangeSet } from "./changes.ts";
import { keyOf, objectOf, resourceOf } from "./changes.ts";
import type { PointInTimePlan } from "./plan.ts";

/** What a point-in-time manifest says beside the usual fields (ignored by readers that do not know it). */
export interface PointInTime {
  at: string;
  cluster: string;
  base: string;
  /** Segments read. */
  segments: number;
  /** Records applied (t <= at). */
  records: number;
  /** The time of the last record applied; the base's finishedAt when none was. */
  lastRecord: string;
}

export type PointInTimeManifest = PlainManifest & { pointInTime: PointInTime };

/** The base, as the replay reads it: a verified snapshot's manifest and entries. */
export interface BaseSource {
  readonly manifest: PlainManifest;
  entries(): AsyncIterable<ArchiveEntry>;
}

/**
 * A valid snapshot ID for T, the same for the same T and base: its second, then the millisecond
 * in the top 10 bits as newSnapshotId does, and 22 bits of a hash instead of random ones.
 */
export function pointInTimeId(at: Date, base: string): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const hash = createHash("sha256").update(`${base}@${at.toISOString()}`).digest().readUInt32BE(0) >>> 10;
  return `${stamp}-${(at.getUTCMilliseconds() * 2 ** 22 + hash).toString(16).padStart(8, "0")}`;
}

/**
 * Reads every segment the plan names, checking each and the links between them. A segment that
 * fails a check is a SourceRefusedError naming it.
 */
export async function readChanges(
  storage: StorageBackend,
  plan: PointInTimePlan,
  changes: ChangeSet,
  signal?: AbortSignal,
): Promise<void> {
  const at = plan.at.getTime();
  let prev: string | null = plan.prevOfFirst;
  for (const seg of plan.segments) {
    signal?.throwIfAborted();
    const key = segmentKey(seg);
    const records = await readStoredSegment(storage, seg, prev, signal);
    try {
      // the whole segment is read even past T: its trailer and hash are what prove it intact
      for await (const r of records) if (Date.parse(r.t) <= at) await changes.apply(r);
    } catch (e) {
      if (!(e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID")) throw e;
      // the segment reader's own errors name the segment already; the change set's do not
      if (e.message.startsWith("journal segment "))
        throw new SourceRefusedError({ segment: key }, e.message, { ...e.context }, { cause: e });
      throw new SourceRefusedError(
        { segment: key },
        `journal segment ${key}: ${e.message}`,
        { key },
        { cause: e },
      );
    }
    prev = seg.sha256;
  }
}

/** The resource a CRD created by the journal serves, from its body. */
function resourceFromCrd(body: Buffer, version: string | undefined): ManifestResource | undefined {
  const crd = parseJson(body.toString("utf8"));
  const spec = isJsonObject(crd) && isJsonObject(crd["spec"]) ? crd["spec"] : undefined;
  const names = spec && isJsonObject(spec["names"]) ? spec["names"] : undefined;
  if (!spec || !names || typeof spec["group"] !== "string" || typeof names["plural"] !== "string")
    return undefined;
  const versions = (Array.isArray(spec["versions"]) ? spec["versions"] : []).filter(
    isJsonObject,
  ) as JsonObject[];
  const storageVersion = String(versions.find((v) => v["storage"] === true)?.["name"] ?? "");
  return {
    group: spec["group"],
    version: version ?? storageVersion,
    plural: names["plural"],
    kind: String(names["kind"] ?? ""),
    namespaced: spec["scope"] !== "Cluster",
    storageVersion,
    servedVersions: versions.filter((v) => v["served"] === true).map((v) => String(v["name"])),
    count: 0,
    bytes: 0,
    listResourceVersion: "",
    consistent: true,
    errors: [],
  };
}

/**
 * Writes the state at T to `file` (an archive) and returns its manifest. `changes` holds the
 * journal up to T (readChanges); `base` is the chain's verified base.
 */
export async function writeState(
  base: BaseSource,
  plan: PointInTimePlan,
  changes: ChangeSet,
  file: string,
  signal?: AbortSignal,
): Promise<PointInTimeManifest> {
  const at = plan.at;
  const id = pointInTimeId(at, plan.base);
  const writer = new ArchiveWriter(id, { mtime: at, tmpDir: path.dirname(file), signal });
  const out = pipeline(writer.stream, createWriteStream(file), { signal });
  out.catch((e: unknown) => void writer.abort(e));

  const crds = new Set<string>(); // CRDs at T, by name (plural.group)
  const resources = new Map<string, ManifestResource>();
  for (const r of base.manifest.resources)
    resources.set(`${r.plural}.${r.group}`, { ...r, count: 0, bytes: 0 });
  const namespaces = new Set<string>(); // holding objects at T
  const written = new Set<string>();

  const addObject = async (ref: ReturnType<typeof objectOf>, body: Buffer, uid: string | undefined) => {
    const resource = resources.get(`${ref.plural}.${ref.group}`);
    if (!crds.has(`${ref.plural}.${ref.group}`) || !resource) return; // its CRD is gone at T
    const size = await writer.addObject(ref, body, { uid });
    resource.count++;
    resource.bytes += size;
    if (ref.namespace !== undefined) namespaces.add(ref.namespace);
  };
  const addNamespace = async (name: string, body: Buffer, uid: string | undefined) => {
    await writer.addNamespace(name, body, { uid });
    written.add(name);
  };

  /** After the base's CRDs: the journal's, then after its objects the journal's objects. */
  let phase = 0;
  const enter = async (next: number) => {
    while (phase < next) {
      phase++;
      for (const c of changes.all()) {
        const key = c.key;
        if (phase === 1 && key.startsWith("c/") && changes.alive(key)) {
          const name = key.slice(2);
          const body = await changes.body(c);
          if (!resources.has(name)) {
            const version = firstVersion(changes, name);
            const r = resourceFromCrd(body, version);
            if (r) resources.set(name, r);
          }
          await writer.addCrd(name, body, { uid: c.uid });
          crds.add(name);
        } else if (phase === 2 && key.startsWith("o/") && changes.alive(key)) {
          await addObject(objectOf(key, c.version!), await changes.body(c), c.uid);
        }
      }
    }
  };

  try {
    for await (const e of base.entries()) {
      signal?.throwIfAborted();
      if (e.kind === "crd") {
        const key = keyOf({ kind: "crd", name: e.record.name });
        if (changes.has(key) || !changes.alive(key)) continue;
        await writer.addCrd(e.record.name, e.body, { uid: e.record.uid });
        crds.add(e.record.name);
      } else if (e.kind === "object") {
        await enter(1);
        const key = keyOf({ kind: "object", ref: e.ref });
        if (changes.has(key) || !changes.alive(key)) continue;
        await addObject(e.ref, e.body, e.record.uid);
      } else if (e.kind === "namespace") {
        await enter(2);
        const name = e.record.name;
        const key = keyOf({ kind: "namespace", name });
        if (!namespaces.has(name) || changes.has(key) || !changes.alive(key)) continue;
        await addNamespace(name, e.body, e.record.uid);
      }
    }
    await enter(2);
    for (const name of [...namespaces].sort()) {
      const c = changes.get(`n/${name}`);
      if (!written.has(name) && c && changes.alive(`n/${name}`))
        await addNamespace(name, await changes.body(c), c.uid);
    }
    const totals = await writer.finish();
    await out;

    const present = [...resources.values()].filter((r) => crds.has(`${r.plural}.${r.group}`));
    // a Namespace that holds objects but has no body at T: restore creates it bare, as it does
    // for one a snapshot could not read
    const namespaceErrors = [...namespaces]
      .filter((n) => !written.has(n))
      .sort()
      .map((namespace) => ({
        namespace,
        reason: base.manifest.namespaceErrors.find((e) => e.namespace === namespace)?.reason ?? "NotRecorded",
        message: `Namespace ${namespace} holds objects at ${at.toISOString()} but neither the base nor the journal has its body`,
      }));
    const manifest: PlainManifest = {
      toolVersion: TOOL_VERSION,
      snapshotId: id,
      status: base.manifest.status === "partial" || namespaceErrors.length > 0 ? "partial" : "complete",
      cluster: base.manifest.cluster,
      startedAt: at.toISOString(),
      finishedAt: at.toISOString(),
      options: base.manifest.options,
      resources: present,
      namespaceErrors,
      ...archiveFields(totals),
    };
    // the same checks a stored manifest passes; pointInTime rides beside them
    const checked = plainManifest(parseManifest(serializeManifest(manifest)));
    return {
      ...checked,
      pointInTime: {
        at: at.toISOString(),
        cluster: plan.cluster,
        base: plan.base,
        segments: plan.segments.length,
        records: changes.applied,
        lastRecord: changes.lastRecord ?? base.manifest.finishedAt,
      },
    };
  } catch (e) {
    await writer.abort(e);
    await out.catch(() => undefined);
    throw e;
  }
}

/** The version the journal recorded a resource's objects at, for a CRD the base did not have. */
function firstVersion(changes: ChangeSet, crd: string): string | undefined {
  for (const c of changes.all()) if (c.version && resourceOf(c.key) === crd) return c.version;
  return undefined;
}
