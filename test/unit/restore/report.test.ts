import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  KEPT,
  ReportBuilder,
  reportDocument,
  reportSummary,
  summarize,
  type ReportEntry,
} from "../../../src/restore/report.ts";

const entry = (i: number, outcome: ReportEntry["outcome"]): ReportEntry => ({
  kind: "object",
  resource: "widgets.example.com",
  namespace: "ns",
  name: `w-${i}`,
  outcome,
  ...(outcome === "failed" ? { reason: `boom ${i}` } : {}),
});

describe("the restore report", () => {
  it("spools every entry to disk, in order, and keeps only counts and the first problems in memory", async () => {
    const builder = new ReportBuilder("snap", false);
    const n = 3 * KEPT + 17;
    for (let i = 0; i < n; i++) builder.add(entry(i, i % 2 === 0 ? "failed" : "created"));
    builder.add({ ...entry(n, "created"), warnings: ["owner dropped"] });
    const report = builder.build();
    expect(report.counts.failed).toBe(Math.ceil(n / 2));
    expect(report.counts.created).toBe(Math.floor(n / 2) + 1);
    expect(report.status).toBe("partial");
    expect(report.problems).toHaveLength(KEPT);
    expect(report.problems[1]!.name).toBe("w-2");
    expect(report.warned).toBe(1);
    const doc = await reportDocument(report);
    expect(doc.entries).toHaveLength(n + 1);
    expect(doc.entries.map((e) => e.name)).toEqual(Array.from({ length: n + 1 }, (_, i) => `w-${i}`));
    expect(doc).not.toHaveProperty("problems");
    // read twice: the CLI writes --report and -o json from the same report
    let again = 0;
    for await (const _ of report.entries()) again++;
    expect(again).toBe(n + 1);
    const lines = summarize(report);
    expect(lines[0]).toMatch(/partial: created 1509, .* failed 1509/);
    expect(lines).toContain(`  ... and ${Math.ceil(n / 2) - 20} more (see --report)`);
    await report[Symbol.asyncDispose]();
    await expect(async () => {
      for await (const _ of report.entries());
    }).rejects.toThrow();
  });

  it("a sync's deletes: counted in the head, those finalizers hold listed first with their finalizers, then the rest", async () => {
    const builder = new ReportBuilder("snap", false);
    builder.add(entry(0, "unchanged"));
    for (let i = 1; i <= 25; i++) builder.add(entry(i, "deleted"));
    builder.add({ ...entry(26, "terminating"), reason: "waiting on finalizer example.com/hold" });
    const report = builder.build();
    expect(report.status).toBe("success");
    const lines = summarize(report);
    expect(lines[0]).toMatch(/success: created 0, updated 0, unchanged 1, .*, deleted 25, terminating 1$/);
    expect(lines[1]).toBe(
      "  terminating: widgets.example.com ns/w-26: waiting on finalizer example.com/hold",
    );
    expect(lines[2]).toBe("  deleted: widgets.example.com ns/w-1");
    expect(lines.at(-1)).toBe("  ... and 5 more deletes (see --report)");
    await report[Symbol.asyncDispose]();

    const dry = new ReportBuilder("snap", true);
    dry.add(entry(1, "would-delete"));
    const planned = dry.build();
    expect(summarize(planned)).toEqual([
      expect.stringMatching(/^dry run of restore from snap: .*, would delete 1$/),
      "  would-delete: widgets.example.com ns/w-1",
    ]);
    await planned[Symbol.asyncDispose]();
  });

  it("a restore without deletes says nothing of them", async () => {
    const builder = new ReportBuilder("snap", false);
    builder.add(entry(0, "created"));
    const report = builder.build();
    expect(summarize(report)).toEqual([expect.not.stringMatching(/delet|terminating/)]);
    await report[Symbol.asyncDispose]();
  });

  it("an empty report has no spool file and reads back empty", async () => {
    const report = new ReportBuilder("snap", true).build();
    expect((await reportDocument(report)).entries).toEqual([]);
    await report[Symbol.asyncDispose]();
  });

  it("discard removes what was spooled", () => {
    const builder = new ReportBuilder("snap", false);
    for (let i = 0; i < 5000; i++) builder.add(entry(i, "created"));
    const spooled = (builder as unknown as { spool: { path: string } }).spool.path;
    expect(existsSync(spooled)).toBe(true);
    builder.discard();
    expect(existsSync(spooled)).toBe(false);
  });

  it("carries every resource's version verdict in its head and counts the objects written through a map", async () => {
    const versions = [
      {
        resource: "widgets.example.com",
        archivedVersion: "v1alpha1",
        crd: "live" as const,
        servedVersions: ["v1beta1"],
        storageVersion: "v1beta1",
        conversion: "None" as const,
        verdict: "mapped" as const,
        writtenVersion: "v1beta1",
      },
    ];
    const builder = new ReportBuilder("snap", false, versions);
    for (let i = 0; i < 3; i++)
      builder.add({ ...entry(i, "created"), versionMap: { from: "v1alpha1", to: "v1beta1" } });
    builder.add(entry(3, "created"));
    const report = builder.build();
    expect(report.mapped).toBe(3);
    expect(reportSummary(report).versions).toEqual(versions);
    expect(summarize(report)).toContain("  version map: 3 objects written through a map (see --report)");
    expect((await reportDocument(report)).entries[0]!.versionMap).toEqual({
      from: "v1alpha1",
      to: "v1beta1",
    });
    await report[Symbol.asyncDispose]();
  });
});
