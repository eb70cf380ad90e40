import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import type { KubeClient } from "../../src/kube/client.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { helmTemplate, runTool, type Manifest } from "../support/helm.ts";
import { spoolDir, startLongRunning, startRecorder } from "../support/recorder.ts";

const MONITORING = fileURLToPath(new URL("../../deploy/monitoring/", import.meta.url));
const RULES_FILE = path.join(MONITORING, "crd-backup.rules.yaml");

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rulesOf = (groups: { rules: Rule[] }[]) => groups.flatMap((g) => g.rules);
const rules = rulesOf(
  (parseYaml(readFileSync(RULES_FILE, "utf8")) as { groups: { rules: Rule[] }[] }).groups,
);

/** The metric families (# TYPE lines) of Prometheus text-format output. */
const familiesOf = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));

/** name -> the label names of each of its samples, from Prometheus text-format output. */
function seriesOf(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) continue;
    const keys = [...(m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((k) => k[1]!).sort();
    if (!out.has(m[1]!)) out.set(m[1]!, new Set());
    out.get(m[1]!)!.add(keys.join(","));
  }
  return out;
}

/** What a scrape adds to every series: the target's labels (and the chart's monitoring.cluster). */
const TARGET = {
  cluster: "prod",
  job: "crd-backup-metrics",
  namespace: "crd-backup",
  instance: "10.1.2.3:9464",
};

describe("deploy/monitoring: alert rules and dashboard", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  /** The real metrics of a snapshot and a drill (their --metrics-file), the recorder and the standby (/metrics). */
  let real: Map<string, Set<string>>;
  let realText: string;
  const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-monitoring-"));

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("mon")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("mon-a")],
      widgetsPerNamespace: 3,
    });
    const storage = path.join(dir, "backups");
    const snap = await runCli([
      "snapshot",
      "--storage",
      storage,
      "--include-groups",
      fx.group,
      "--keep-last",
      "3",
      "--metrics-file",
      path.join(dir, "snapshot.prom"),
    ]);
    expect(snap.code, snap.stderr).toBe(0);
    const drill = await runCli([
      "drill",
      "latest",
      "--storage",
      storage,
      "--namespace-prefix",
      `${uniqueName("d")}-`,
      "--cleanup",
      "--remove-finalizers",
      "--metrics-file",
      path.join(dir, "drill.prom"),
    ]);
    expect(drill.code, drill.stderr).toBe(0);
    // the recorder's /metrics, once it has stored a segment of a change
    const rec = startRecorder([
      "--storage",
      path.join(dir, "journal"),
      "--include-groups",
      fx.group,
      "--flush-interval",
      "1s",
      "--spool-dir",
      spoolDir(),
      "--metrics-addr",
      "127.0.0.1:0",
    ]);
    let journal = "";
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await admin.request({
        method: "PATCH",
        path: `/apis/${fx.group}/v1/namespaces/${fx.namespaces[0]}/widgets/widget-0000`,
        body: JSON.stringify({ metadata: { labels: { recorded: "yes" } } }),
        contentType: "application/merge-patch+json",
      });
      for (let i = 0; i < 60 && !/^crd_backup_journal_last_flush_timestamp_seconds /m.test(journal); i++) {
        await sleep(500);
        journal = await rec.metrics();
      }
    } finally {
      rec.child.kill("SIGTERM");
      await rec.exited;
    }
    // the standby's /metrics, once it has applied that journal (into this same cluster: the
    // objects are already equal, so it writes nothing but its state, in a namespace of its own)
    const standby = startLongRunning("standby", [
      "--storage",
      path.join(dir, "journal"),
      "--target-kubeconfig",
      testEnv().kubeconfig,
      "--state-namespace",
      uniqueName("mon-sb"),
      "--include-groups",
      fx.group,
      "--metrics-addr",
      "127.0.0.1:0",
    ]);
    let standbyText: string;
    try {
      await standby.waitFor(() => standby.count("standby applied") > 0, "the standby's first step");
      standbyText = await standby.metrics();
    } finally {
      standby.child.kill("SIGTERM");
      await standby.exited;
    }
    realText = [
      readFileSync(path.join(dir, "snapshot.prom"), "utf8"),
      readFileSync(path.join(dir, "drill.prom"), "utf8"),
      journal,
      standbyText,
    ].join("");
    real = seriesOf(realText);
  }, 180_000);
  afterAll(() => admin.close());

  /** A series as the real output has it (name and label names checked), with the target's labels added. */
  function series(name: string, labels: Record<string, string> = {}): string {
    const keys = Object.keys(labels).sort().join(",");
    expect(real.get(name), `${name} is not in the real metrics output`).toBeDefined();
    expect([...real.get(name)!], name).toContain(keys);
    const all = { ...labels, ...TARGET };
    return `${name}{${Object.entries(all)
      .map(([k, v]) => `${k}="${v}"`)
      .join(",")}}`;
  }

  it("every metric the rules and the dashboard use is in the real output of a snapshot, a drill, the recorder and the standby", () => {
    expect(realText).toMatch(/^crd_backup_snapshot_last_run_success 1$/m);
    expect(realText).toMatch(/^crd_backup_drill_success 1$/m);
    expect(realText).toMatch(/^crd_backup_journal_segments_total [1-9]/m);
    expect(realText).toMatch(/^crd_backup_standby_applied_until_timestamp_seconds \d/m);
    expect(realText).toMatch(/^crd_backup_standby_resyncs_total 1$/m);
    const dashboard = readFileSync(path.join(MONITORING, "grafana-dashboard.json"), "utf8");
    const used = new Set(
      [...rules.map((r) => r.expr), dashboard].flatMap((t) =>
        [...t.matchAll(/\bcrd_backup_[a-z_]+/g)].map((m) => m[0]),
      ),
    );
    expect(used.size).toBeGreaterThan(15);
    for (const name of used) expect(real.has(name), name).toBe(true);
    // every metric a snapshot, a drill, the recorder and the standby export is on the dashboard
    for (const name of familiesOf(realText)) expect(dashboard, name).toContain(name);
  });

  it("promtool check rules accepts the rule file, and every alert has a severity, a summary, a description and a runbook", async () => {
    const res = await runTool(testEnv().tools.promtool, ["check", "rules", RULES_FILE]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/SUCCESS: 9 rules found/);
    expect(rules.map((r) => r.alert)).toEqual([
      "CrdBackupNoRecentSnapshot",
      "CrdBackupSnapshotFailed",
      "CrdBackupSnapshotPartial",
      "CrdBackupDrillFailed",
      "CrdBackupJournalLagHigh",
      "CrdBackupJournalStalled",
      "CrdBackupJournalGap",
      "CrdBackupStandbyBehind",
      "CrdBackupStandbyRefusing",
    ]);
    for (const r of rules) {
      expect(["critical", "warning"], r.alert).toContain(r.labels["severity"]);
      expect(Object.keys(r.annotations).sort(), r.alert).toEqual(["description", "runbook", "summary"]);
      expect(r.annotations["runbook"]!.length, r.alert).toBeGreaterThan(200);
    }
  });

  it("promtool test rules: each alert fires on the series that should fire it, and not on the ones that should not", async () => {
    const annotations = (alert: string) => rules.find((r) => r.alert === alert)!.annotations;
    const severity = (alert: string) => rules.find((r) => r.alert === alert)!.labels["severity"]!;
    const fires = (alert: string, extra: Record<string, string> = {}) => [
      { exp_labels: { ...TARGET, ...extra, severity: severity(alert) }, exp_annotations: annotations(alert) },
    ];
    const runs = (outcome: string) => series("crd_backup_snapshot_runs_total", { outcome });
    const tests = [
      {
        name: "no recent snapshot: the last success is 13 hours old",
        input_series: [
          { series: series("crd_backup_snapshot_last_success_timestamp_seconds"), values: "0+0x800" },
        ],
        alert_rule_test: [
          { eval_time: "11h", alertname: "CrdBackupNoRecentSnapshot", exp_alerts: [] },
          {
            eval_time: "13h",
            alertname: "CrdBackupNoRecentSnapshot",
            exp_alerts: fires("CrdBackupNoRecentSnapshot"),
          },
        ],
      },
      {
        name: "no recent snapshot: every run failed, none ever succeeded",
        input_series: [
          { series: runs("success"), values: "0x60" },
          { series: runs("failure"), values: "1x30 2x30" },
        ],
        alert_rule_test: [
          {
            eval_time: "30m",
            alertname: "CrdBackupNoRecentSnapshot",
            exp_alerts: fires("CrdBackupNoRecentSnapshot"),
          },
        ],
      },
      {
        name: "recent snapshots: one every 6 hours, the last success at most 6 hours old",
        input_series: [
          // the timestamp follows time, stepping every 6 hours (360 one-minute samples)
          {
            series: series("crd_backup_snapshot_last_success_timestamp_seconds"),
            values: "0x359 21600x360 43200x360",
          },
          { series: runs("success"), values: "1x359 2x360 3x360" },
          { series: runs("failure"), values: "3x1079" },
        ],
        alert_rule_test: [
          { eval_time: "17h", alertname: "CrdBackupNoRecentSnapshot", exp_alerts: [] },
          { eval_time: "17h", alertname: "CrdBackupSnapshotFailed", exp_alerts: [] },
        ],
      },
      {
        name: "the last run failed",
        input_series: [
          { series: series("crd_backup_snapshot_last_run_success"), values: "1x10 0x20" },
          { series: series("crd_backup_snapshot_last_run_partial"), values: "0x30" },
        ],
        alert_rule_test: [
          { eval_time: "5m", alertname: "CrdBackupSnapshotFailed", exp_alerts: [] },
          {
            eval_time: "20m",
            alertname: "CrdBackupSnapshotFailed",
            exp_alerts: fires("CrdBackupSnapshotFailed"),
          },
          { eval_time: "20m", alertname: "CrdBackupSnapshotPartial", exp_alerts: [] },
        ],
      },
      {
        name: "the last run was partial: a partial alert, not a failure",
        input_series: [
          { series: series("crd_backup_snapshot_last_run_success"), values: "1x10 0x20" },
          { series: series("crd_backup_snapshot_last_run_partial"), values: "0x10 1x20" },
        ],
        alert_rule_test: [
          { eval_time: "5m", alertname: "CrdBackupSnapshotPartial", exp_alerts: [] },
          {
            eval_time: "20m",
            alertname: "CrdBackupSnapshotPartial",
            exp_alerts: fires("CrdBackupSnapshotPartial"),
          },
          { eval_time: "20m", alertname: "CrdBackupSnapshotFailed", exp_alerts: [] },
        ],
      },
      {
        name: "drills: the last one failed after one passed",
        input_series: [{ series: series("crd_backup_drill_success"), values: "1x10 0x20" }],
        alert_rule_test: [
          { eval_time: "5m", alertname: "CrdBackupDrillFailed", exp_alerts: [] },
          { eval_time: "20m", alertname: "CrdBackupDrillFailed", exp_alerts: fires("CrdBackupDrillFailed") },
        ],
      },
      {
        name: "journal lag: 10 minutes behind for 20 minutes fires; a 3-minute spike does not",
        input_series: [
          { series: series("crd_backup_journal_lag_seconds"), values: "5x10 600x3 5x10 600x25" },
        ],
        alert_rule_test: [
          { eval_time: "24m", alertname: "CrdBackupJournalLagHigh", exp_alerts: [] },
          {
            eval_time: "45m",
            alertname: "CrdBackupJournalLagHigh",
            exp_alerts: fires("CrdBackupJournalLagHigh"),
          },
        ],
      },
      {
        name: "journal stalled: no segment stored for 15 minutes",
        input_series: [{ series: series("crd_backup_journal_last_flush_timestamp_seconds"), values: "0x30" }],
        alert_rule_test: [
          {
            eval_time: "15m",
            alertname: "CrdBackupJournalStalled",
            exp_alerts: fires("CrdBackupJournalStalled"),
          },
        ],
      },
      {
        name: "journal flowing: a segment stored every 30 seconds",
        input_series: [
          // each minute's scrape sees a flush of that minute
          { series: series("crd_backup_journal_last_flush_timestamp_seconds"), values: "0+60x30" },
        ],
        alert_rule_test: [{ eval_time: "15m", alertname: "CrdBackupJournalStalled", exp_alerts: [] }],
      },
      {
        name: "journal gaps: a new gap fires; gaps recorded long ago do not",
        input_series: [{ series: series("crd_backup_journal_gaps_total"), values: "2x120 3x30" }],
        alert_rule_test: [
          { eval_time: "110m", alertname: "CrdBackupJournalGap", exp_alerts: [] },
          { eval_time: "130m", alertname: "CrdBackupJournalGap", exp_alerts: fires("CrdBackupJournalGap") },
        ],
      },
      {
        name: "standby behind: the point in time it equals stops advancing for 10 minutes",
        input_series: [
          { series: series("crd_backup_standby_applied_until_timestamp_seconds"), values: "0x30" },
        ],
        alert_rule_test: [
          // behind from 3 minutes on: pending, not yet firing
          { eval_time: "6m", alertname: "CrdBackupStandbyBehind", exp_alerts: [] },
          {
            eval_time: "10m",
            alertname: "CrdBackupStandbyBehind",
            exp_alerts: fires("CrdBackupStandbyBehind"),
          },
        ],
      },
      {
        name: "standby following: each minute's scrape sees a state of that minute",
        input_series: [
          { series: series("crd_backup_standby_applied_until_timestamp_seconds"), values: "0+60x30" },
        ],
        alert_rule_test: [{ eval_time: "25m", alertname: "CrdBackupStandbyBehind", exp_alerts: [] }],
      },
      {
        name: "standby refusing: an error every minute for 20 minutes fires",
        input_series: [{ series: series("crd_backup_standby_errors_total"), values: "0+1x30" }],
        alert_rule_test: [
          {
            eval_time: "20m",
            alertname: "CrdBackupStandbyRefusing",
            exp_alerts: fires("CrdBackupStandbyRefusing"),
          },
        ],
      },
      {
        name: "standby refusing: one error that the retry got past does not",
        input_series: [{ series: series("crd_backup_standby_errors_total"), values: "0x10 1x50" }],
        alert_rule_test: [
          { eval_time: "20m", alertname: "CrdBackupStandbyRefusing", exp_alerts: [] },
          { eval_time: "45m", alertname: "CrdBackupStandbyRefusing", exp_alerts: [] },
        ],
      },
    ];
    // every alert has a case where it fires and one where it does not
    for (const r of rules) {
      const cases = tests.flatMap((t) => t.alert_rule_test).filter((c) => c.alertname === r.alert);
      expect(
        cases.some((c) => c.exp_alerts.length > 0),
        r.alert,
      ).toBe(true);
      expect(
        cases.some((c) => c.exp_alerts.length === 0),
        r.alert,
      ).toBe(true);
    }
    const file = path.join(dir, "crd-backup.rules.test.yaml");
    writeFileSync(
      file,
      stringify({
        rule_files: [RULES_FILE],
        evaluation_interval: "1m",
        tests: tests.map((t) => ({ interval: "1m", ...t })),
      }),
    );
    const res = await runTool(testEnv().tools.promtool, ["test", "rules", file]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/SUCCESS/);

    // and the check has teeth: a wrong expectation fails
    const wrong = structuredClone(tests);
    wrong[5]!.alert_rule_test[0]!.exp_alerts = fires("CrdBackupDrillFailed");
    writeFileSync(file, stringify({ rule_files: [RULES_FILE], evaluation_interval: "1m", tests: wrong }));
    const failed = await runTool(testEnv().tools.promtool, ["test", "rules", file]);
    expect(failed.code).not.toBe(0);
    expect(failed.stdout + failed.stderr).toMatch(/CrdBackupDrillFailed/);
  });

  it("the rule file, the PrometheusRule and the chart's rendered rules are the same rules", async () => {
    const groups = (parseYaml(readFileSync(RULES_FILE, "utf8")) as { groups: unknown }).groups;
    const pr = parseYaml(readFileSync(path.join(MONITORING, "prometheusrule.yaml"), "utf8")) as Manifest;
    expect(pr["spec"]["groups"]).toEqual(groups);
    const rendered = await helmTemplate({ values: { monitoring: { enabled: true } } });
    expect(rendered.code, rendered.stderr).toBe(0);
    const chartRule = rendered.objects.find((m) => m["kind"] === "PrometheusRule")!;
    expect(chartRule["spec"]["groups"]).toEqual(groups);

    // the chart's thresholds change only the thresholds
    const custom = await helmTemplate({
      values: {
        monitoring: {
          enabled: true,
          rules: { snapshotMaxAgeSeconds: 90000, journalMaxLagSeconds: 60, standbyMaxBehindSeconds: 600 },
        },
      },
    });
    const customRules = rulesOf(
      custom.objects.find((m) => m["kind"] === "PrometheusRule")!["spec"]["groups"],
    );
    expect(customRules.find((r) => r.alert === "CrdBackupNoRecentSnapshot")!.expr).toContain(
      "crd_backup_snapshot_last_success_timestamp_seconds > 90000",
    );
    expect(customRules.find((r) => r.alert === "CrdBackupJournalLagHigh")!.expr).toBe(
      "crd_backup_journal_lag_seconds > 60",
    );
    const behind = customRules.find((r) => r.alert === "CrdBackupStandbyBehind")!;
    expect(behind.expr).toBe("time() - crd_backup_standby_applied_until_timestamp_seconds > 600");
    expect(behind.annotations["summary"]).toBe("The standby cluster is more than 600 s behind the primary.");
  });

  it("the Grafana dashboard is valid JSON with a panel for each thing the issue asks to see", () => {
    const dashboard = JSON.parse(readFileSync(path.join(MONITORING, "grafana-dashboard.json"), "utf8")) as {
      uid: string;
      templating: { list: { name: string }[] };
      panels: { type: string; title: string; targets?: { expr: string }[]; datasource?: { uid: string } }[];
    };
    expect(dashboard.uid).toBe("crd-backup");
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(["datasource", "cluster"]);
    const panels = dashboard.panels.filter((p) => p.type !== "row");
    for (const p of panels) {
      expect(p.datasource?.uid, p.title).toBe("${datasource}");
      for (const t of p.targets ?? []) expect(t.expr, p.title).toContain('cluster=~"$cluster"');
    }
    const exprOf = (title: RegExp) =>
      panels
        .filter((p) => title.test(p.title))
        .flatMap((p) => p.targets ?? [])
        .map((t) => t.expr)
        .join("\n");
    expect(exprOf(/since last successful snapshot/)).toMatch(/by \(cluster\).*last_success_timestamp/);
    expect(exprOf(/^Duration/)).toContain("crd_backup_snapshot_duration_seconds");
    expect(exprOf(/^Objects per run/)).toContain("crd_backup_snapshot_objects");
    expect(exprOf(/^Bytes per run/)).toContain("crd_backup_snapshot_bytes");
    expect(exprOf(/[Pp]artial and failed/)).toContain('outcome!="success"');
    expect(exprOf(/^Last drill/)).toContain("crd_backup_drill_success");
    expect(exprOf(/Recovery time/)).toContain("crd_backup_drill_rto_seconds");
    expect(exprOf(/^Journal lag/)).toContain("crd_backup_journal_lag_seconds");
    expect(exprOf(/^Standby behind/)).toMatch(
      /time\(\) - max by \(cluster\) \(crd_backup_standby_applied_until/,
    );
    expect(exprOf(/^Standby behind/)).toContain("crd_backup_standby_lag_seconds");
    expect(exprOf(/^Standby change lag/)).toContain("crd_backup_standby_change_lag_seconds_bucket");
  });
});
