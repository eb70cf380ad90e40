import type { KubeClient } from "../../src/kube/client.ts";
import { collectionPath } from "../../src/kube/discovery.ts";
import { isJsonObject, type JsonObject } from "../../src/json/json.ts";
import { listPages } from "../../src/kube/list.ts";
import { canonicalJson } from "../../src/json/canonical.ts";
import { comparableForm } from "../../src/objects/normalize.ts";

export interface LiveState {
  /** `resource ns/name` -> canonical comparable JSON (owner uids left out: they change on restore). */
  forms: Map<string, string>;
  /** `resource ns/name` -> uid, and owner references as [kind, name, uid]. */
  uids: Map<string, string>;
  owners: Map<string, [string, string, string][]>;
}

/** Everything the API server holds for `resources` (plural, version) of `group`, in comparable form. */
export async function liveState(
  client: KubeClient,
  group: string,
  resources: [string, string][],
  options: { withStatus: boolean; namespaces?: string[] },
): Promise<LiveState> {
  const state: LiveState = { forms: new Map(), uids: new Map(), owners: new Map() };
  for (const [plural, version] of resources) {
    for await (const page of listPages(client, collectionPath(group, version, plural), { pageSize: 200 })) {
      for (const obj of page) {
        const md = obj["metadata"] as JsonObject;
        if (
          options.namespaces &&
          md["namespace"] !== undefined &&
          !options.namespaces.includes(String(md["namespace"]))
        )
          continue;
        const key = `${plural} ${md["namespace"] ?? ""}/${md["name"]}`;
        state.forms.set(key, canonicalJson(comparableForm(obj, { withStatus: options.withStatus })));
        state.uids.set(key, String(md["uid"]));
        const refs = Array.isArray(md["ownerReferences"]) ? md["ownerReferences"].filter(isJsonObject) : [];
        state.owners.set(
          key,
          refs.map((r) => [String(r["kind"]), String(r["name"]), String(r["uid"])]),
        );
      }
    }
  }
  return state;
}
