import { describe, expect, it } from "vitest";
import { Decisions } from "../../../src/restore/decisions.ts";
import { ownerDepths } from "../../../src/restore/order.ts";

describe("the plan's per-object decisions", () => {
  it("keep action, status and scope per ordinal, extras only where given, across growth", () => {
    const d = new Decisions();
    d.set(0, { action: "create", hasStatus: false, namespaced: true });
    d.set(9000, {
      action: "skip",
      hasStatus: true,
      namespaced: false,
      reason: "exists",
      liveUid: "u-1",
      modifiers: { rules: [0], diff: [], droppedBy: 0 },
    });
    d.set(0, { action: "update", hasStatus: true, namespaced: true });
    expect(d.count).toBe(2);
    expect(d.get(0)).toEqual({ action: "update", hasStatus: true, namespaced: true });
    expect(d.get(1)).toBeUndefined();
    expect(d.get(123456)).toBeUndefined();
    expect(d.get(9000)).toEqual({
      action: "skip",
      hasStatus: true,
      namespaced: false,
      reason: "exists",
      liveUid: "u-1",
      modifiers: { rules: [0], diff: [], droppedBy: 0 },
    });
  });

  it("phase: cluster-scoped before namespaced, each by owner depth", () => {
    const d = new Decisions();
    d.set(0, { action: "create", hasStatus: false, namespaced: false }); // cluster owner
    d.set(1, { action: "create", hasStatus: false, namespaced: true }); // owned by 0
    d.set(2, { action: "create", hasStatus: false, namespaced: true }); // owned by 1
    d.set(3, { action: "create", hasStatus: false, namespaced: true }); // no owner
    d.setDepths(
      ownerDepths(
        new Map([
          [1, ["a"]],
          [2, ["b"]],
        ]),
        new Map([
          ["a", 0],
          ["b", 1],
        ]),
      ),
    );
    expect([0, 1, 2, 3].map((i) => d.phase(i))).toEqual([0, 4, 5, 3]);
    expect(d.phases()).toEqual([0, 3, 4, 5]);
  });

  it("without owners there are two phases at most, and only those that hold objects", () => {
    const d = new Decisions();
    d.set(5, { action: "create", hasStatus: false, namespaced: true });
    expect(d.phases()).toEqual([1]);
  });
});

describe("owner depth", () => {
  it("is the longest owner chain inside the restore; outside owners and self-references count nothing", () => {
    const depths = ownerDepths(
      new Map([
        [1, ["u0"]],
        [2, ["u1", "u0"]],
        [3, ["elsewhere"]],
        [4, ["u4"]],
      ]),
      new Map([
        ["u0", 0],
        ["u1", 1],
        ["u4", 4],
      ]),
    );
    expect(Object.fromEntries(depths)).toEqual({ 0: 0, 1: 1, 2: 2, 3: 0, 4: 0 });
  });

  it("cuts a cycle, which a tampered archive might hold", () => {
    const depths = ownerDepths(
      new Map([
        [0, ["u1"]],
        [1, ["u0"]],
      ]),
      new Map([
        ["u0", 0],
        ["u1", 1],
      ]),
    );
    expect([...depths.keys()].sort()).toEqual([0, 1]);
    expect(Math.max(...depths.values())).toBeLessThanOrEqual(2); // cut where it was entered: finite
  });
});
