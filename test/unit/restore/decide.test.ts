import { describe, expect, it } from "vitest";
import type { JsonObject } from "../../../src/json/json.ts";
import { objectMembers } from "../../../src/json/scan.ts";
import type { ModifierResult } from "../../../src/modifiers/apply.ts";
import { digestOf } from "../../../src/objects/live.ts";
import type { Decision } from "../../../src/restore/decisions.ts";
import type { ItemIdentity } from "../../../src/restore/item.ts";
import { decide } from "../../../src/restore/decide.ts";
import type { ExistingPolicy, ResourcePlan } from "../../../src/restore/types.ts";

/** The stored object: in namespace `src`, restored into `dst`. */
const STORED: JsonObject = {
  apiVersion: "example.com/v1",
  kind: "Widget",
  metadata: { name: "w", namespace: "src", labels: { app: "web" } },
  spec: { size: 3 },
};

/** An object as it is in the target namespace, as the live list digests it. */
const inTarget = (o: JsonObject): JsonObject => ({
  ...o,
  metadata: { ...(o["metadata"] as JsonObject), namespace: "dst" },
});

const same = (withStatus = false) => digestOf(inTarget(STORED), withStatus);
const other = digestOf(inTarget({ ...STORED, spec: { size: 4 } }), false);

interface Row {
  name: string;
  policy?: ExistingPolicy;
  /** The live object's digest under `dst/w`, when there is one. */
  live?: string;
  conflict?: string;
  invalidNamespace?: string;
  modified?: ModifierResult;
  stored?: JsonObject;
  restoreStatus?: boolean;
  want: Decision;
}

const base = { hasStatus: false, namespaced: true } as const;

const ROWS: Row[] = [
  { name: "create: nothing live under the name", want: { ...base, action: "create" } },
  {
    name: "unchanged: live and identical, under --existing update too",
    live: same(),
    policy: "update",
    want: { ...base, action: "unchanged", liveUid: "live-uid" },
  },
  {
    name: "update: live, differs, --existing update",
    live: other,
    policy: "update",
    want: { ...base, action: "update", liveUid: "live-uid" },
  },
  {
    name: "skip: live, differs, --existing skip",
    live: other,
    want: {
      ...base,
      action: "skip",
      reason: "exists and differs from the snapshot (--existing skip)",
      liveUid: "live-uid",
    },
  },
  {
    name: "conflict: live under --existing fail, even when identical",
    live: same(),
    policy: "fail",
    want: { ...base, action: "conflict", reason: "already exists (--existing fail)", liveUid: "live-uid" },
  },
  {
    name: "conflict: the resource conflicts (a live CRD that does not serve the version), before all else",
    live: other,
    conflict: "the live CRD does not serve v1",
    modified: { kind: "dropped", rules: [0], rule: 0 },
    want: {
      ...base,
      action: "conflict",
      reason: "the live CRD does not serve v1",
      modifiers: { rules: [0], diff: [], droppedBy: 0 },
    },
  },
  {
    name: "conflict: the target namespace is not a valid name",
    invalidNamespace: 'target namespace "x" is not a valid name',
    want: { ...base, action: "conflict", reason: 'target namespace "x" is not a valid name' },
  },
  {
    name: "skip: a modifier rule dropped it (live or not)",
    live: same(),
    modified: { kind: "dropped", rules: [1, 2], rule: 2 },
    want: {
      ...base,
      action: "skip",
      reason: "dropped by resource modifier rule 2",
      modifiers: { rules: [1, 2], diff: [], droppedBy: 2 },
    },
  },
  {
    name: "failed: a modifier rule failed on it",
    modified: { kind: "failed", rules: [0], rule: 0, reason: "rule 0 (m.yaml): no such path" },
    want: {
      ...base,
      action: "failed",
      reason: "rule 0 (m.yaml): no such path",
      modifiers: { rules: [0], diff: [], failedRule: 0 },
    },
  },
  {
    name: "patched: compared and checked for status as patched, with what changed",
    live: other,
    policy: "update",
    modified: {
      kind: "patched",
      object: { ...STORED, spec: { size: 4 }, status: { ready: true } },
      rules: [0],
      skipped: [1],
      diff: [{ op: "changed", path: "/spec/size" }],
    },
    want: {
      action: "unchanged",
      hasStatus: true,
      namespaced: true,
      liveUid: "live-uid",
      modifiers: { rules: [0], diff: [{ op: "changed", path: "/spec/size" }], skipped: [1] },
    },
  },
  {
    name: "status: found among the stored body's members; compared only with --restore-status",
    stored: { ...STORED, status: { ready: true } },
    live: same(),
    policy: "update",
    want: { action: "unchanged", hasStatus: true, namespaced: true, liveUid: "live-uid" },
  },
  {
    name: "status: a status the live object lacks is an update with --restore-status",
    stored: { ...STORED, status: { ready: true } },
    live: same(true),
    policy: "update",
    restoreStatus: true,
    want: { action: "update", hasStatus: true, namespaced: true, liveUid: "live-uid" },
  },
];

function identity(row: Row): ItemIdentity {
  const resource: ResourcePlan = {
    key: "widgets.example.com",
    group: "example.com",
    version: "v1",
    archivedVersion: "v1",
    plural: "widgets",
    kind: "Widget",
    namespaced: true,
    policy: row.policy ?? "skip",
    crdLive: true,
    statusSubresource: true,
    live: new Map(row.live ? [["dst/w", { uid: "live-uid", digest: row.live }]] : []),
    ...(row.conflict ? { conflict: row.conflict } : {}),
  };
  return {
    resource,
    sourceNamespace: "src",
    namespace: "dst",
    ...(row.invalidNamespace ? { invalidNamespace: row.invalidNamespace } : {}),
    name: "w",
    uid: "source-uid",
    ownerUids: [],
    modified: row.modified ?? { kind: "unmatched" },
  };
}

describe("decide: what the plan does with one object", () => {
  it.each(ROWS)("$name", (row) => {
    const stored = Buffer.from(JSON.stringify(row.stored ?? STORED));
    const { members } = objectMembers(stored, 0);
    expect(decide(identity(row), stored, members, { restoreStatus: row.restoreStatus ?? false })).toEqual(
      row.want,
    );
  });

  it("a cluster-scoped object's decision says so", () => {
    const item = identity({ name: "", want: { ...base, action: "create" } });
    item.resource.namespaced = false;
    const stored = Buffer.from(JSON.stringify(STORED));
    expect(decide(item, stored, objectMembers(stored, 0).members, { restoreStatus: false }).namespaced).toBe(
      false,
    );
  });

  it("a mapped object is compared as it will be written: through the map's version", () => {
    const live = (apiVersion: string) => digestOf(inTarget({ ...STORED, apiVersion }), false);
    const item = identity({ name: "", live: live("example.com/v2"), want: { ...base, action: "create" } });
    item.resource.archivedVersion = "v1";
    item.resource.version = "v2";
    const stored = Buffer.from(JSON.stringify(STORED));
    const { members } = objectMembers(stored, 0);
    expect(decide(item, stored, members, { restoreStatus: false }).action).toBe("unchanged");
    // unmapped, the same live object differs in its apiVersion
    item.resource.version = "v1";
    expect(decide(item, stored, members, { restoreStatus: false }).action).toBe("skip");
  });
});
