import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  type Dirent,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIG_INTS, loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { LAST_APPLIED, cleanForApply } from "../../src/export/manifest.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { parseJson, type JsonObject, type JsonValue } from "../../src/json/json.ts";
import { canonicalJson } from "../../src/json/canonical.ts";
import { comparableForm } from "../../src/objects/normalize.ts";
import { VerifiedSnapshot } from "../../src/source/verified.ts";
import { LocalBackend } from "../../src/storage/local.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import { jsonText, readYaml } from "../unit/export/read-yaml.ts";

/** Strings YAML readers (kubectl's included) would turn into something else if written bare. */
const TRICKY: Record<string, string> = {
  yes: "yes",
  on: "on",
  n: "N",
  null: "null",
  tilde: "~",
  hex: "0x1F",
  octal: "0755",
  exp: "1e3",
  float: "1.0",
  sexagesimal: "12:30",
  date: "2001-12-14",
  empty: "",
  space: " leading and trailing ",
  colon: "key: value",
  hash: "a #not a comment",
  dash: "- not a list",
  indicator: "&anchor *alias !tag",
  quotes: `it's "quoted" \\ backslash`,
  tab: "a\tb",
  control: "bell\u0007 esc\u001b nul\u0000",
  invisible: "zwj\u200d nbsp\u00a0 bidi\u202e bom\ufeff nel\u0085 ls\u2028",
  unicode: "Grüße, 世界 ✓ — emoji 🚀 👩‍👩‍👧",
  script: "#!/bin/sh\nset -e\n\necho 'done'\n",
  indented: "  first line indented\nsecond\n\n\n",
  trailingSpaces: "line one  \nline two",
  crlf: "windows\r\nline",
  "0x1F": "key that looks like a number",
  "yes please": "plain key",
};

interface ArchivedEntry {
  kind: "crd" | "namespace" | "object";
  /** The path the export must use, built here independently of src/export/layout.ts. */
  file: string;
  value: JsonValue;
}

function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}

describe("crd-backup export", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  const storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-export-store-"));
  const work = mkdtempSync(path.join(os.tmpdir(), "crd-backup-export-"));
  let id: string;
  let archived: ArchivedEntry[];

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("exp")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("exp-a"), uniqueName("exp-b")],
      widgetsPerNamespace: 4,
    });
    const [ns] = fx.namespaces;
    await admin.request({
      method: "POST",
      path: `/apis/${fx.group}/v1/namespaces/${ns}/widgets`,
      body: JSON.stringify({
        apiVersion: `${fx.group}/v1`,
        kind: "Widget",
        metadata: {
          name: "widget-tricky",
          namespace: ns,
          annotations: { [LAST_APPLIED]: '{"kind":"Widget"}', "example.com/yes": "no" },
        },
        spec: {
          size: "small",
          port: "8080",
          note: "multi\nline\n",
          counter: JSON.rawJSON(BIG_INTS[1]!),
          settings: { ...TRICKY, big: JSON.rawJSON(BIG_INTS[0]!), ratio: 0.1, list: ["yes", "1e3", [], {}] },
        },
      }),
    });
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(snap.code).toBe(0);
    id = (JSON.parse(snap.stdout) as { id: string }).id;

    archived = [];
    await using snapshot = await VerifiedSnapshot.fetch(new LocalBackend(storage), id);
    for await (const e of snapshot.entries()) {
      const value = parseJson(e.kind === "index" ? "null" : e.body.toString("utf8"));
      if (e.kind === "crd") archived.push({ kind: "crd", file: `_crds/${e.record.name}`, value });
      else if (e.kind === "namespace")
        archived.push({ kind: "namespace", file: `_namespaces/${e.record.name}`, value });
      else if (e.kind === "object") {
        const { group, plural, namespace, name } = e.ref;
        const file = [group, plural, ...(namespace ? [namespace] : []), name].join("/");
        archived.push({ kind: "object", file, value });
      }
    }
  });
  afterAll(() => admin.close());

  const exportTo = async (name: string, ...flags: string[]) => {
    const to = path.join(work, name);
    const res = await runCli(["export", id, "--storage", storage, "--to", to, ...flags]);
    expect(res.stderr).not.toMatch(/error/i);
    expect(res.code).toBe(0);
    return { to, res };
  };

  it("writes the readable tree as YAML, every file reading back as exactly the archived object", async () => {
    const { to, res } = await exportTo("yaml");
    const objects = fx.counts.widgets + 1 + fx.counts.gadgets + fx.counts.clusterpolicies;
    expect(res.stdout).toBe(
      `exported snapshot ${id} to ${to}: 3 CRDs, 2 namespaces, ${objects} objects as yaml\n`,
    );
    const [a, b] = fx.namespaces;
    const written = files(to);
    expect(written).toEqual(archived.map((e) => `${e.file}.yaml`).sort());
    for (const expected of [
      `_crds/widgets.${fx.group}.yaml`,
      `_crds/clusterpolicies.${fx.group}.yaml`,
      `_namespaces/${a}.yaml`,
      `_namespaces/${b}.yaml`,
      `${fx.group}/widgets/${a}/widget-0000.yaml`,
      `${fx.group}/widgets/${b}/widget-0003.yaml`,
      `${fx.group}/widgets/${a}/widget-tricky.yaml`,
      `${fx.group}/gadgets/${b}/gadget-0002.yaml`,
      `${fx.group}/clusterpolicies/default-policy.yaml`,
    ])
      expect(written).toContain(expected);

    for (const e of archived) {
      const text = readFileSync(path.join(to, `${e.file}.yaml`), "utf8");
      expect(jsonText(readYaml(text)), e.file).toBe(jsonText(e.value));
      expect(jsonText(readYaml(text, "1.1")), e.file).toBe(jsonText(e.value));
    }
    const widget = readFileSync(path.join(to, `${fx.group}/widgets/${a}/widget-0001.yaml`), "utf8");
    expect(widget).toContain(`  counter: ${BIG_INTS[1]}\n`);
    expect(widget).toContain(`  observed: ${BIG_INTS[1]}\n`);
    expect(widget).toContain("status:\n  conditions:\n");
    expect(readFileSync(path.join(to, `${fx.group}/clusterpolicies/default-policy.yaml`), "utf8")).toContain(
      `  limit: ${BIG_INTS[2]}\n`,
    );
    const ns = readFileSync(path.join(to, `_namespaces/${a}.yaml`), "utf8");
    expect(ns).toMatch(/^kind: Namespace\napiVersion: v1\nmetadata:\n/); // as the API server sent it
    const crd = readFileSync(path.join(to, `_crds/widgets.${fx.group}.yaml`), "utf8");
    expect(crd).toMatch(/^kind: CustomResourceDefinition\napiVersion: apiextensions.k8s.io\/v1\n/);
  });

  it("-o json writes the same tree as indented JSON, numbers exact", async () => {
    const { to } = await exportTo("json", "-o", "json");
    expect(files(to)).toEqual(archived.map((e) => `${e.file}.json`).sort());
    for (const e of archived) {
      const text = readFileSync(path.join(to, `${e.file}.json`), "utf8");
      expect(text.endsWith("}\n") && text.startsWith("{\n  ")).toBe(true);
      expect(jsonText(parseJson(text)), e.file).toBe(jsonText(e.value));
    }
    const gadget = readFileSync(
      path.join(to, `${fx.group}/gadgets/${fx.namespaces[0]}/gadget-0000.json`),
      "utf8",
    );
    expect(gadget).toContain(`"weight": ${BIG_INTS[0]}`);
  });

  it("--clean-for-apply leaves out status, ownerReferences and last-applied-configuration, nothing else", async () => {
    const { to, res } = await exportTo("clean", "--clean-for-apply");
    expect(res.stdout).toMatch(/, cleaned for kubectl apply\n$/);
    for (const e of archived) {
      const doc = readYaml(readFileSync(path.join(to, `${e.file}.yaml`), "utf8")) as JsonObject;
      expect(doc["status"], e.file).toBeUndefined();
      expect((doc["metadata"] as JsonObject)["ownerReferences"], e.file).toBeUndefined();
      expect(jsonText(doc)).toBe(jsonText(cleanForApply(e.value as JsonObject)));
    }
    const tricky = readYaml(
      readFileSync(path.join(to, `${fx.group}/widgets/${fx.namespaces[0]}/widget-tricky.yaml`), "utf8"),
    ) as JsonObject;
    expect((tricky["metadata"] as JsonObject)["annotations"]).toEqual({ "example.com/yes": "no" });
  });

  it("the exported manifests create the same objects on the real API server: as JSON parsed back from the YAML, and as the YAML itself", async () => {
    const { to } = await exportTo("apply");
    const [source] = fx.namespaces;
    const fromJson = uniqueName("exp-json");
    const fromYaml = uniqueName("exp-yaml");
    for (const ns of [fromJson, fromYaml]) await createNamespace(admin, ns);
    const objects = archived.filter((e) => e.kind === "object" && e.file.includes(`/${source}/`));
    expect(objects.length).toBeGreaterThan(5);

    for (const e of objects) {
      const [, plural] = e.file.split("/");
      const version = plural === "gadgets" ? "v2" : "v1";
      const yaml = readFileSync(path.join(to, `${e.file}.yaml`), "utf8");
      // 1. read losslessly, sent as JSON text
      const doc = readYaml(yaml) as JsonObject;
      (doc["metadata"] as JsonObject)["namespace"] = fromJson;
      await admin.request({
        method: "POST",
        path: `/apis/${fx.group}/${version}/namespaces/${fromJson}/${plural}`,
        body: JSON.stringify(doc),
      });
      // 2. the YAML text itself, read by the API server's own YAML decoder (Go, YAML 1.1 rules)
      const moved = yaml.replace(`\n  namespace: ${source}\n`, `\n  namespace: ${fromYaml}\n`);
      expect(moved).not.toBe(yaml);
      await admin.request({
        method: "POST",
        path: `/apis/${fx.group}/${version}/namespaces/${fromYaml}/${plural}`,
        contentType: "application/yaml",
        body: moved,
      });
    }
    // the cluster-scoped policy, under a new name, as YAML
    const policyName = uniqueName("policy");
    const policyYaml = readFileSync(path.join(to, `${fx.group}/clusterpolicies/default-policy.yaml`), "utf8");
    await admin.request({
      method: "POST",
      path: `/apis/${fx.group}/v1alpha1/clusterpolicies`,
      contentType: "application/yaml",
      body: policyYaml.replace("\n  name: default-policy\n", `\n  name: ${policyName}\n`),
    });

    const get = async (p: string) => parseJson((await admin.request({ path: p })).text) as JsonObject;
    const form = (obj: JsonObject, ns: string | undefined) => {
      const f = comparableForm(obj, { withStatus: false });
      const md = f["metadata"] as JsonObject;
      if (ns !== undefined) md["namespace"] = ns;
      return canonicalJson(f);
    };
    for (const e of objects) {
      const [, plural, , name] = e.file.split("/");
      const version = plural === "gadgets" ? "v2" : "v1";
      const original = await get(`/apis/${fx.group}/${version}/namespaces/${source}/${plural}/${name}`);
      for (const ns of [fromJson, fromYaml]) {
        const created = await get(`/apis/${fx.group}/${version}/namespaces/${ns}/${plural}/${name}`);
        expect(form(created, source), `${ns}/${name}`).toBe(form(original, source));
      }
    }
    const tricky = await admin.request({
      path: `/apis/${fx.group}/v1/namespaces/${fromYaml}/widgets/widget-tricky`,
    });
    expect(tricky.text).toContain(`"big":${BIG_INTS[0]}`);
    expect(tricky.text).toContain(`"counter":${BIG_INTS[1]}`);
    const settings = (parseJson(tricky.text) as { spec: { settings: JsonObject } }).spec.settings;
    for (const [k, v] of Object.entries(TRICKY)) expect(settings[k], k).toBe(v);
    const policy = await admin.request({ path: `/apis/${fx.group}/v1alpha1/clusterpolicies/${policyName}` });
    expect(policy.text).toContain(`"limit":${BIG_INTS[2]}`);
    const original = await get(`/apis/${fx.group}/v1alpha1/clusterpolicies/default-policy`);
    expect(canonicalJson((parseJson(policy.text) as JsonObject)["spec"])).toBe(
      canonicalJson(original["spec"]),
    );
  });

  it("writes nothing for a tampered or missing snapshot, and says why in one line", async () => {
    const copy = mkdtempSync(path.join(os.tmpdir(), "crd-backup-export-tampered-"));
    cpSync(storage, copy, { recursive: true });
    const archive = path.join(copy, "snapshots", id, "archive.tar.zst");
    const bytes = readFileSync(archive);
    bytes[bytes.length - 40]! ^= 0x01;
    writeFileSync(archive, bytes);

    const parent = mkdtempSync(path.join(work, "tampered-"));
    const to = path.join(parent, "out");
    const res = await runCli(["export", id, "--storage", copy, "--to", to]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(
      new RegExp(`^crd-backup: snapshot ${id}: archive .*; nothing was exported\\n$`),
    );
    expect(res.stdout).toBe("");
    expect(readdirSync(parent)).toEqual([]);

    const missing = await runCli(["export", "20200101T000000Z-00000000", "--storage", storage, "--to", to]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(to)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });

  it("refuses a non-empty --to (exit 2) unless --force, and never a directory holding .git", async () => {
    const to = path.join(work, "busy");
    mkdirSync(to);
    writeFileSync(path.join(to, "notes.txt"), "mine");
    const refused = await runCli(["export", id, "--storage", storage, "--to", to]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is not empty; use --force/);
    expect(files(to)).toEqual(["notes.txt"]);

    const forced = await runCli(["export", id, "--storage", storage, "--to", to, "--force"]);
    expect(forced.code).toBe(0);
    expect(files(to)).toEqual(archived.map((e) => `${e.file}.yaml`).sort());

    mkdirSync(path.join(to, ".git"));
    const git = await runCli(["export", id, "--storage", storage, "--to", to, "--force"]);
    expect(git.code).toBe(2);
    expect(git.stderr).toMatch(/\.git/);
    expect(existsSync(path.join(to, ".git"))).toBe(true);
  });
});
