import { describe, expect, it } from "vitest";
import { classify, fieldDiff, type ObjectState, type Observation } from "../../../src/history/classify.ts";

const t = new Date("2026-12-03T05:00:00Z");
const obj = (spec: object, status?: object, extra: object = {}) =>
  Buffer.from(
    JSON.stringify({
      apiVersion: "g/v1",
      kind: "W",
      metadata: { name: "w", ...extra },
      spec,
      ...(status ? { status } : {}),
    }),
  );
const state = (body: Buffer | undefined, uid = "u1"): ObjectState => ({ t, body, uid });
const put = (body: Buffer, uid = "u1"): Observation => ({ t, op: "put", body, uid });
const snap = (body: Buffer | undefined, base = true): Observation => ({
  t,
  op: "snapshot",
  base,
  body,
  uid: "u1",
});

describe("version classification", () => {
  const cases: [string, ObjectState | undefined, Observation, ReturnType<typeof classify>][] = [
    ["in the base", undefined, snap(obj({ a: 1 })), { what: "in-base", paths: [] }],
    ["in a lone snapshot", undefined, snap(obj({ a: 1 }), false), { what: "in-snapshot", paths: [] }],
    ["a base holding it as it was: nothing", state(obj({ a: 1 })), snap(obj({ a: 1 })), undefined],
    [
      "a base that differs: the paths",
      state(obj({ a: 1 })),
      snap(obj({ a: 2 })),
      { what: "in-base", paths: [".spec.a"] },
    ],
    [
      "absent from a base after it existed: deleted",
      state(obj({ a: 1 })),
      snap(undefined),
      { what: "deleted", paths: [] },
    ],
    ["created", undefined, put(obj({ a: 1 })), { what: "created", paths: [] }],
    [
      "updated",
      state(obj({ a: 1 })),
      put(obj({ a: 2, b: true })),
      { what: "updated", paths: [".spec.a", ".spec.b"] },
    ],
    [
      "status only",
      state(obj({ a: 1 }, { p: "x" })),
      put(obj({ a: 1 }, { p: "y" })),
      { what: "status-only", paths: [".status.p"] },
    ],
    [
      "status added",
      state(obj({ a: 1 })),
      put(obj({ a: 1 }, { p: "y" })),
      { what: "status-only", paths: [".status"] },
    ],
    ["an unchanged put: nothing", state(obj({ a: 1 })), put(obj({ a: 1 })), undefined],
    ["deleted", state(obj({ a: 1 })), { t, op: "delete", uid: "u1" }, { what: "deleted", paths: [] }],
    ["a delete of what is gone: nothing", state(undefined), { t, op: "delete", uid: "u1" }, undefined],
    ["recreated after a delete", state(undefined), put(obj({ a: 1 })), { what: "recreated", paths: [] }],
    [
      "recreated: a new uid without a recorded delete",
      state(obj({ a: 1 })),
      put(obj({ a: 3 }), "u2"),
      { what: "recreated", paths: [".spec.a"] },
    ],
  ];
  for (const [name, prev, o, want] of cases) it(name, () => expect(classify(prev, o)).toEqual(want));
});

describe("changed paths and field diffs", () => {
  it("names labels with odd keys, list items, and keeps int64 values exact", () => {
    const a = Buffer.from(
      '{"metadata":{"labels":{"app.kubernetes.io/name":"x"}},"spec":{"big":9007199254740993,"l":[1,2]}}',
    );
    const b = Buffer.from(
      '{"metadata":{"labels":{"app.kubernetes.io/name":"y"}},"spec":{"big":9007199254740995,"l":[1,3]}}',
    );
    expect(fieldDiff(a, b)).toEqual([
      { path: '.metadata.labels["app.kubernetes.io/name"]', op: "changed", from: '"x"', to: '"y"' },
      { path: ".spec.big", op: "changed", from: "9007199254740993", to: "9007199254740995" },
      { path: ".spec.l[1]", op: "changed", from: "2", to: "3" },
    ]);
  });

  it("a list that changed length is one change; added and removed members carry one side", () => {
    const a = Buffer.from('{"spec":{"l":[1],"gone":{"x":1}}}');
    const b = Buffer.from('{"spec":{"l":[1,2],"new":"v"}}');
    expect(fieldDiff(a, b)).toEqual([
      { path: ".spec.l", op: "changed", from: "[1]", to: "[1,2]" },
      { path: ".spec.gone", op: "removed", from: '{"x":1}' },
      { path: ".spec.new", op: "added", to: '"v"' },
    ]);
  });

  it("stops at the limit", () => {
    const a = Buffer.from(JSON.stringify(Object.fromEntries([...Array(80).keys()].map((i) => [`k${i}`, i]))));
    const b = Buffer.from(
      JSON.stringify(Object.fromEntries([...Array(80).keys()].map((i) => [`k${i}`, i + 1]))),
    );
    expect(fieldDiff(a, b, 50)).toHaveLength(50);
  });
});
