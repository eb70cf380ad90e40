import type { ManifestResource } from "../archive/manifest.ts";
import type { ArchiveEntry } from "../archive/reader.ts";
import { diffJson, type FieldChange } from "../json/diff.ts";
import type { KubeClient } from "../kube/client.ts";
import { collectionPath, CRD_PATH, crdCondition } from "../kube/discovery.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import { listPages } from "../kube/list.ts";
import { EntryModifiers } from "../modifiers/entries.ts";
import type { ModifierSet } from "../modifiers/types.ts";
import { digestOf, getJson, objectPath } from "../objects/live.ts";
import { comparableForm } from "../objects/normalize.ts";
import { targetNamespace, type RestoreOptions } from "../restore/options.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import type { Filters } from "../objects/filters.ts";

export interface ResourceCheck {
  /** plural.group */
  resource: string;
  crdEstablished: boolean;
  expected: number;
  matched: number;
  /** `namespace/name` in the target, at most `maxNames` of them. */
  missing: string[];
  changed: { object: string; diff?: FieldChange[] }[];
  missingCount: number;
  changedCount: number;
}

export interface CheckOptions {
  filters: Filters;
  mapping: Pick<RestoreOptions, "namespaceMap" | "namespacePrefix">;
  withStatus: boolean;
  /** The label the drill put on what it created: not part of the comparison. */
  label: { key: string; value: string };
  maxNames: number;
  signal?: AbortSignal;
  /** The restore's resource modifiers: what the target should hold is the patched object, and no dropped one. */
  modifiers?: ModifierSet;
}

/** The drill's label is ours, not the snapshot's: it must not count as a difference. */
function withoutLabel(obj: JsonObject, key: string): JsonObject {
  const md = isJsonObject(obj["metadata"]) ? obj["metadata"] : undefined;
  if (!md || !isJsonObject(md["labels"]) || !(key in md["labels"])) return obj;
  const { [key]: _drop, ...labels } = md["labels"];
  const metadata = { ...md };
  if (Object.keys(labels).length > 0) metadata["labels"] = labels;
  else delete metadata["labels"];
  return { ...obj, metadata };
}

/** The snapshot object as it should look in the target: its namespace mapped. */
function relocated(obj: JsonObject, namespace: string | undefined): JsonObject {
  const md = isJsonObject(obj["metadata"]) ? obj["metadata"] : {};
  return namespace === undefined ? obj : { ...obj, metadata: { ...md, namespace } };
}

/**
 * Checks a drill's restore: every drilled CRD Established, and every selected snapshot object
 * present in the target with the same comparable form (the form `diff` compares). Digests are
 * held for every object; bodies are read again only for the few changed objects it explains.
 */
export async function checkRestored(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  resources: ManifestResource[],
  options: CheckOptions,
): Promise<ResourceCheck[]> {
  const byKey = new Map(resources.map((r) => [`${r.plural}.${r.group}`, r]));
  // per resource: target `namespace/name` -> the digest the object should have there
  const expected = new Map<string, Map<string, string>>();
  for (const key of byKey.keys()) expected.set(key, new Map());

  const targetOf = (namespace: string | undefined) =>
    namespace === undefined ? undefined : targetNamespace(options.mapping, namespace).name;
  const modifiers = options.modifiers ? new EntryModifiers(options.modifiers) : undefined;
  const filter = new EntryFilter(options.filters, expected);
  const selectedBody = (entry: ArchiveEntry) => {
    if (entry.kind === "crd") modifiers?.noteCrd(entry.record.name, entry.body);
    if (entry.kind !== "object" || !filter.selects(entry)) return undefined;
    const resource = `${entry.ref.plural}.${entry.ref.group}`;
    let body = parseJson(entry.body.toString("utf8")) as JsonObject;
    // a failed rule leaves the stored object expected: the restore did not write it, the check says so
    const modified = modifiers?.modify(entry.ref, body);
    if (modified?.kind === "dropped") return undefined;
    if (modified?.kind === "patched") body = modified.object;
    const md = isJsonObject(body["metadata"]) ? body["metadata"] : {};
    const name = typeof md["name"] === "string" ? md["name"] : entry.ref.name;
    const namespace = targetOf(entry.ref.namespace);
    return { resource, key: `${namespace ?? ""}/${name}`, body: relocated(body, namespace) };
  };

  for await (const entry of snapshot.entries()) {
    const e = selectedBody(entry);
    if (e) expected.get(e.resource)!.set(e.key, digestOf(e.body, options.withStatus));
  }

  const checks: ResourceCheck[] = [];
  const explain = new Set<string>();
  for (const [key, wanted] of expected) {
    const r = byKey.get(key)!;
    const crd = await getJson(client, `${CRD_PATH}/${key}`, options.signal);
    const check: ResourceCheck = {
      resource: key,
      crdEstablished: crd !== undefined && crdCondition(crd, "Established"),
      expected: wanted.size,
      matched: 0,
      missing: [],
      changed: [],
      missingCount: 0,
      changedCount: 0,
    };
    checks.push(check);
    if (!check.crdEstablished) {
      check.missingCount = wanted.size;
      check.missing = [...wanted.keys()].sort().slice(0, options.maxNames);
      continue;
    }
    const seen = new Set<string>();
    // only the target namespaces when objects were relocated, so a big source next door is not read
    const namespaces = r.namespaced
      ? [...new Set([...wanted.keys()].map((k) => k.slice(0, k.indexOf("/"))))]
      : [undefined];
    const scopes =
      options.mapping.namespacePrefix || options.mapping.namespaceMap.size ? namespaces : [undefined];
    for (const namespace of scopes) {
      const path = collectionPath(r.group, r.version, r.plural, namespace);
      for await (const page of listPages(client, path, { pageSize: 500, signal: options.signal })) {
        for (const item of page) {
          const md = isJsonObject(item["metadata"]) ? item["metadata"] : {};
          const k = `${md["namespace"] ?? ""}/${md["name"]}`;
          const want = wanted.get(k);
          if (want === undefined) continue;
          seen.add(k);
          if (digestOf(withoutLabel(item, options.label.key), options.withStatus) === want) check.matched++;
          else {
            check.changedCount++;
            if (check.changed.length < options.maxNames) {
              check.changed.push({ object: k });
              explain.add(`${key} ${k}`);
            }
          }
        }
      }
    }
    for (const k of wanted.keys()) {
      if (seen.has(k)) continue;
      check.missingCount++;
      if (check.missing.length < options.maxNames) check.missing.push(k);
    }
    check.missing.sort();
  }

  if (explain.size > 0) {
    const bodies = new Map<string, JsonObject>();
    for await (const entry of snapshot.entries()) {
      const e = selectedBody(entry);
      if (e && explain.has(`${e.resource} ${e.key}`)) bodies.set(`${e.resource} ${e.key}`, e.body);
    }
    for (const check of checks) {
      const r = byKey.get(check.resource)!;
      for (const c of check.changed) {
        const slash = c.object.indexOf("/");
        const live = await getJson(
          client,
          objectPath(
            r.group,
            r.version,
            r.plural,
            c.object.slice(0, slash) || undefined,
            c.object.slice(slash + 1),
          ),
          options.signal,
        );
        const archived = bodies.get(`${check.resource} ${c.object}`);
        if (live && archived) {
          c.diff = diffJson(
            comparableForm(archived, options),
            comparableForm(withoutLabel(live, options.label.key), options),
          );
        }
      }
    }
  }
  return checks;
}
