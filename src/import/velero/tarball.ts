/**
 * Reads a Velero backup tarball (`<backup>.tar.gz`) in two streamed passes, never unpacked and
 * never held: the first learns the format version, which resources have a preferred-version tree,
 * and the CRDs and Namespaces (few, and needed before any object); the second yields the custom
 * resources, one body at a time. Velero writes every item twice (the legacy tree and the
 * preferred-version tree); an item is taken from the preferred tree where its resource has one.
 */
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { CrdBackupError } from "../../errors.ts";
import { MAX_ENTRY_SIZE, quote } from "../../archive/format.ts";
import { readTar, TarFormatError } from "../../archive/tar-reader.ts";
import { isJsonObject, parseJson, type JsonObject } from "../../json/json.ts";
import {
  checkVeleroVersion,
  parseVeleroPath,
  splitResource,
  veleroInvalid,
  VERSION_PATH,
  type VeleroPath,
} from "./layout.ts";

const CRD_RESOURCE = "customresourcedefinitions.apiextensions.k8s.io";
const NAMESPACE_RESOURCE = "namespaces";

export type TarballSource = () => Promise<AsyncIterable<Buffer> | Iterable<Buffer>>;

type Item = Extract<VeleroPath, { kind: "item" }>;

export interface VeleroScan {
  formatVersion: string;
  /** CRDs by name (`<plural>.<group>`), as Velero stored them. */
  crds: Map<string, JsonObject>;
  /** Namespaces by name, as Velero stored them (a backup may hold none of them). */
  namespaces: Map<string, JsonObject>;
  /** Resources whose items are read from their preferred-version tree. */
  preferred: Set<string>;
  /** The earliest and latest member times (Velero stamps each item as it writes it), in ms. */
  firstWritten: number | undefined;
  lastWritten: number | undefined;
}

export interface VeleroItem {
  resource: string;
  plural: string;
  group: string;
  namespace: string | undefined;
  name: string;
  body: Buffer;
}

/** Every regular file of the tarball with its parsed path; anything but files and directories is refused. */
async function* files(
  backup: string,
  source: TarballSource,
): AsyncGenerator<{ path: VeleroPath; name: string; mtime: number; body: () => Promise<Buffer> }> {
  const input = Readable.from(await source());
  const gunzip = createGunzip();
  input.on("error", (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  let last: string | undefined;
  try {
    for await (const { entry, body } of readTar(gunzip)) {
      last = entry.name;
      if (entry.type === "directory") continue;
      if (entry.type !== "file")
        throw veleroInvalid(
          backup,
          `tarball entry ${quote(entry.name)} is a ${entry.type} entry; only files are read`,
        );
      const path = parseVeleroPath(backup, entry.name);
      yield {
        path,
        name: entry.name,
        mtime: entry.mtime,
        body: async () => {
          if (entry.size > MAX_ENTRY_SIZE)
            throw veleroInvalid(
              backup,
              `tarball entry ${quote(entry.name)} is ${entry.size} bytes, more than ${MAX_ENTRY_SIZE}`,
            );
          // read by the consumer, outside this generator's try: its failures need the same words
          return body.all().catch((e: unknown) => Promise.reject(describeFailure(backup, e, entry.name)));
        },
      };
    }
  } catch (e) {
    throw describeFailure(backup, e, last);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

function describeFailure(backup: string, e: unknown, last: string | undefined): unknown {
  if (e instanceof CrdBackupError && e.message.startsWith("Velero backup")) return e;
  const where = last === undefined ? "" : ` after ${quote(last)}`;
  const code = (e as { code?: unknown }).code;
  if (code === "Z_BUF_ERROR" || (e instanceof TarFormatError && e.kind === "truncated"))
    return veleroInvalid(backup, `the tarball is truncated${where}`);
  if (typeof code === "string" && code.startsWith("Z_"))
    return veleroInvalid(backup, `the tarball is not valid gzip data${where}`);
  if (e instanceof TarFormatError || (e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID"))
    return veleroInvalid(
      backup,
      `the tarball is not a valid tar stream${where}: ${e.message.replace(/^archive is not a valid tar stream(?: after entry "[^"]*")?: /, "")}`,
    );
  return e;
}

function parseItem(backup: string, name: string, body: Buffer): JsonObject {
  let doc;
  try {
    doc = parseJson(body.toString("utf8"));
  } catch {
    throw veleroInvalid(backup, `${quote(name)} is not JSON`);
  }
  if (!isJsonObject(doc)) throw veleroInvalid(backup, `${quote(name)} is not a JSON object`);
  return doc;
}

/** Pass 1: the format version, the preferred trees, the CRDs and the Namespaces. */
export async function scanVeleroTarball(backup: string, source: TarballSource): Promise<VeleroScan> {
  let formatVersion: string | undefined;
  const preferred = new Set<string>();
  let firstWritten: number | undefined;
  let lastWritten: number | undefined;
  // both trees are kept until the end of the pass says which one a resource reads from
  const found = {
    crds: [new Map<string, JsonObject>(), new Map<string, JsonObject>()],
    namespaces: [new Map<string, JsonObject>(), new Map<string, JsonObject>()],
  };
  for await (const f of files(backup, source)) {
    if (f.mtime > 0) {
      firstWritten = Math.min(firstWritten ?? Infinity, f.mtime * 1000);
      lastWritten = Math.max(lastWritten ?? 0, f.mtime * 1000);
    }
    if (f.path.kind === "version")
      formatVersion = checkVeleroVersion(backup, (await f.body()).toString("utf8"));
    if (f.path.kind !== "item") continue;
    const { resource, tree, name } = f.path;
    if (tree.kind === "preferred") preferred.add(resource);
    if (tree.kind === "version") continue;
    const which =
      resource === CRD_RESOURCE ? found.crds : resource === NAMESPACE_RESOURCE ? found.namespaces : undefined;
    if (which) which[tree.kind === "preferred" ? 1 : 0]!.set(name, parseItem(backup, f.name, await f.body()));
  }
  if (formatVersion === undefined)
    throw veleroInvalid(backup, `not a Velero backup: ${VERSION_PATH} is missing`);
  const pick = (resource: string, [legacy, pref]: Map<string, JsonObject>[]) =>
    preferred.has(resource) ? pref! : legacy!;
  return {
    formatVersion,
    preferred,
    firstWritten,
    lastWritten,
    crds: pick(CRD_RESOURCE, found.crds),
    namespaces: pick(NAMESPACE_RESOURCE, found.namespaces),
  };
}

/**
 * Pass 2: the custom resources (items of a resource whose CRD is in the backup), from the tree the
 * scan chose. Everything else is counted by kind in `skipped` (CRDs and Namespaces come from the
 * scan, and are not counted).
 */
export async function* veleroItems(
  backup: string,
  source: TarballSource,
  scan: VeleroScan,
  skipped: Map<string, number>,
): AsyncGenerator<VeleroItem> {
  for await (const f of files(backup, source)) {
    if (f.path.kind !== "item") continue;
    const item: Item = f.path;
    const fromPreferred = scan.preferred.has(item.resource);
    if (item.tree.kind === "version" || (item.tree.kind === "preferred") !== fromPreferred) continue;
    if (item.resource === CRD_RESOURCE || item.resource === NAMESPACE_RESOURCE) continue;
    const body = await f.body();
    if (!scan.crds.has(item.resource)) {
      const kind = parseItem(backup, f.name, body)["kind"];
      const key = typeof kind === "string" && kind !== "" ? kind : item.resource;
      skipped.set(key, (skipped.get(key) ?? 0) + 1);
      continue;
    }
    const { plural, group } = splitResource(item.resource);
    yield { resource: item.resource, plural, group, namespace: item.namespace, name: item.name, body };
  }
}
