import { describe, expect, it } from "vitest";
import { sideBySide } from "../../../src/ui/line-diff.ts";

const lines = (n: number, f: (i: number) => string = (i) => `line ${i}`) =>
  Array.from({ length: n }, (_, i) => f(i)).join("\n");

describe("side-by-side line diff", () => {
  it("pairs a changed line and folds what did not change around it", () => {
    const a = lines(20);
    const b = lines(20, (i) => (i === 10 ? "line ten" : `line ${i}`));
    const rows = sideBySide(a, b);
    expect(rows[0]).toEqual({ kind: "fold", lines: 7 });
    expect(rows.slice(1, 4).map((r) => r.kind)).toEqual(["same", "same", "same"]);
    expect(rows[4]).toEqual({
      kind: "changed",
      left: { n: 11, text: "line 10" },
      right: { n: 11, text: "line ten" },
    });
    expect(rows.at(-1)).toEqual({ kind: "fold", lines: 6 });
  });

  it("shows added and removed lines against nothing, with their own line numbers", () => {
    const rows = sideBySide("a\nb\nc", "a\nx\ny\nc").filter((r) => r.kind === "changed");
    expect(rows).toEqual([
      { kind: "changed", left: { n: 2, text: "b" }, right: { n: 2, text: "x" } },
      { kind: "changed", right: { n: 3, text: "y" } },
    ]);
    expect(sideBySide("a\nb\nc", "a\nc").filter((r) => r.kind === "changed")).toEqual([
      { kind: "changed", left: { n: 2, text: "b" } },
    ]);
  });

  it("aligns moved and repeated lines by their longest common run", () => {
    const rows = sideBySide("k: 1\na: x\nb: y\nc: z", "a: x\nb: y\nk: 2\nc: z");
    const same = rows.filter((r) => r.kind === "same").map((r) => (r.kind === "same" ? r.text : ""));
    expect(same).toEqual(["a: x", "b: y", "c: z"]);
  });

  it("folds two identical texts whole, and bounds the work for two huge different ones", () => {
    expect(sideBySide(lines(50), lines(50))).toEqual([{ kind: "fold", lines: 50 }]);
    const rows = sideBySide(
      lines(3000, (i) => `a${i}`),
      lines(3000, (i) => `b${i}`),
    );
    expect(rows.filter((r) => r.kind === "changed")).toHaveLength(3000);
  });
});
