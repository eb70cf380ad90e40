import { describe, expect, it } from "vitest";
import { KubeApiError } from "../../../src/errors.ts";
import type { ItemPlan } from "../../../src/restore/item.ts";
import {
  objectStep,
  refusedOutcome,
  unvalidated,
  writtenOutcome,
  type ObjectStep,
} from "../../../src/restore/object-step.ts";

type Planned = Pick<ItemPlan, "action" | "reason" | "modifiers">;

describe("objectStep: what writing does with a planned object", () => {
  const rows: [string, Planned, ObjectStep][] = [
    ["create is written", { action: "create" }, { kind: "write", action: "create" }],
    ["update is written", { action: "update" }, { kind: "write", action: "update" }],
    ["unchanged is reported", { action: "unchanged" }, { kind: "report", outcome: "unchanged" }],
    [
      "a conflict is reported with its reason",
      { action: "conflict", reason: "already exists (--existing fail)" },
      { kind: "report", outcome: "conflict", reason: "already exists (--existing fail)", liveDiff: false },
    ],
    [
      "a failure is reported with its reason",
      { action: "failed", reason: "rule 0 failed" },
      { kind: "report", outcome: "failed", reason: "rule 0 failed", liveDiff: false },
    ],
    [
      "a skip is reported with what differs from the live object",
      { action: "skip", reason: "exists and differs" },
      { kind: "report", outcome: "skipped", reason: "exists and differs", liveDiff: true },
    ],
    [
      "a dropped object is skipped without a live diff",
      {
        action: "skip",
        reason: "dropped by resource modifier rule 1",
        modifiers: { rules: [1], diff: [], droppedBy: 1 },
      },
      { kind: "report", outcome: "skipped", reason: "dropped by resource modifier rule 1", liveDiff: false },
    ],
  ];
  it.each(rows)("%s", (_name, item, want) => {
    expect(objectStep(item)).toEqual(want);
  });
});

describe("outcomes of writes", () => {
  const conflict = new KubeApiError(409, 'POST /apis/x: widgets "w" already exists', {
    method: "POST",
    path: "/apis/x",
  });
  const invalid = new KubeApiError(422, "POST /apis/x: spec.size: Invalid value", {
    method: "POST",
    path: "/apis/x",
  });

  it("a write that succeeded: created or updated, would-... in a dry run", () => {
    expect(writtenOutcome("create", false)).toBe("created");
    expect(writtenOutcome("update", false)).toBe("updated");
    expect(writtenOutcome("create", true)).toBe("would-create");
    expect(writtenOutcome("update", true)).toBe("would-update");
  });

  it("a refused create that finds the object there is skipped; every other refusal fails", () => {
    const appeared = "already exists (appeared after the plan was made)";
    expect(refusedOutcome("create", conflict)).toEqual({ outcome: "skipped", reason: appeared });
    expect(refusedOutcome("update", conflict)).toEqual({ outcome: "failed", reason: appeared });
    expect(refusedOutcome("create", invalid)).toEqual({
      outcome: "failed",
      reason: "spec.size: Invalid value",
    });
    expect(refusedOutcome("update", invalid)).toEqual({
      outcome: "failed",
      reason: "spec.size: Invalid value",
    });
  });

  it("a dry run cannot validate objects of a CRD or in a namespace it did not create", () => {
    const item = (crdLive: boolean, namespace?: string) =>
      ({ resource: { crdLive }, namespace }) as unknown as ItemPlan;
    const plan = {
      namespaces: [
        { name: "new", source: "new", exists: false },
        { name: "old", source: "old", exists: true },
      ],
    };
    expect(unvalidated(item(false, "old"), plan)).toBe("its CRD is not installed yet");
    expect(unvalidated(item(true, "new"), plan)).toBe("its namespace does not exist yet");
    expect(unvalidated(item(true, "old"), plan)).toBeUndefined();
    expect(unvalidated(item(true), plan)).toBeUndefined();
  });
});
