/**
 * `crd-backup ui` in a real headless Chromium (Debian's, driven by puppeteer-core), against
 * snapshots and a journal of objects created on the real kube-apiserver: the fleet, a cluster's
 * timeline, a snapshot browsed down to one object's YAML and restore command, paging, an object
 * across snapshots, a point in time, the error page and the token. Screenshots go to
 * .testenv/screenshots/. Every page is read-only: the location's files (names, sizes, mtimes)
 * are the same before and after, and the command takes no kubeconfig at all.
 */
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { StorageBackend } from "../../src/storage/backend.ts";
import { runCli } from "../support/cli.ts";
import {
  adminClient,
  createCrd,
  createNamespace,
  uniqueName,
  waitForCrdEstablished,
} from "../support/cluster.ts";
import { createRaw, makeCrd, objPath, patch, spoolDir, startRecorder } from "../support/recorder.ts";
import { freshLocal, freshS3 } from "../support/storage.ts";
import { launchBrowser, SCREENSHOTS, startUi, texts, type UiProcess } from "../support/ui.ts";

const PAGE_SIZE = 5;

/** Every file under `root` with its size and mtime: what "nothing was written" is checked against. */
function filesOf(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[])
    .map((f) => path.join(root, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => `${path.relative(root, f)} ${statSync(f).size} ${statSync(f).mtimeMs}`)
    .sort();
}

async function keysOf(storage: StorageBackend): Promise<string[]> {
  const out: string[] = [];
  for await (const { key, size } of storage.list("")) out.push(`${key} ${size}`);
  return out;
}

describe("crd-backup ui in a real browser", () => {
  let admin: KubeClient;
  let browser: Browser;
  let ui: UiProcess;
  const group = `${uniqueName("ui")}.crd-backup.io`;
  const ns = uniqueName("ui");
  const storage = freshLocal();
  const dir = storage.location.replace(/^file:\/\//, "");
  const snapshots: string[] = [];
  let clusterUid = "";
  let before: string[] = [];
  const pageErrors: string[] = [];
  let afterPatch = "";
  const drillReport = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-ui-drill-")), "drill.json");

  const snapshot = async () => {
    const r = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    snapshots.push(id);
    return id;
  };

  beforeAll(async () => {
    admin = await adminClient();
    await makeCrd(admin, group, "widgets", "Widget");
    await createCrd(admin, {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `zones.${group}` },
      spec: {
        group,
        scope: "Cluster",
        names: { plural: "zones", kind: "Zone" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        ],
      },
    });
    await waitForCrdEstablished(admin, `zones.${group}`);
    await createNamespace(admin, ns);
    // seven widgets: more than a page of five; an annotation that would be markup if not escaped
    for (let i = 1; i <= 7; i++) {
      await createRaw(
        admin,
        objPath(group, "widgets", ns),
        `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w-0${i}","annotations":{"note":"<script>alert(${i})</script>"}},"spec":{"size":1,"big":9223372036854775807}}`,
      );
    }
    await createRaw(
      admin,
      `/apis/${group}/v1/zones`,
      `{"apiVersion":"${group}/v1","kind":"Zone","metadata":{"name":"eu-1"},"spec":{"region":"eu"}}`,
    );
    await snapshot();
    // a recorder: its own base snapshot, then a journal with w-03 changed and w-08 created
    const rec = startRecorder(["--storage", dir, "--include-groups", group, "--spool-dir", spoolDir()]);
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await patch(admin, objPath(group, "widgets", ns, "w-03"), { spec: { size: 2 } });
      await createRaw(
        admin,
        objPath(group, "widgets", ns),
        `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w-08"},"spec":{"size":8}}`,
      );
      await sleep(1500);
      afterPatch = new Date().toISOString(); // inside the window: the recorder's last flush comes after it
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
    const listed = await runCli(["list", "--storage", dir, "-o", "json"]);
    const rows = JSON.parse(listed.stdout) as { id: string; cluster: { uid: string } }[];
    snapshots.splice(0, snapshots.length, ...rows.map((r) => r.id));
    clusterUid = rows[0]!.cluster.uid;
    await snapshot(); // a third: w-03 as patched
    expect(snapshots).toHaveLength(3);

    // a drill of the first snapshot into prefixed namespaces of the same cluster: the location
    // stores no drill results, the view shows the report drill wrote
    const drill = await runCli([
      "drill",
      snapshots[0]!,
      "--storage",
      dir,
      "--namespace-prefix",
      `${uniqueName("dr")}-`,
      "--report",
      drillReport,
    ]);
    expect(drill.code, drill.stderr).toBe(0);
    before = filesOf(dir);
    ui = await startUi([
      "--storage",
      dir,
      "--listen",
      "127.0.0.1:0",
      "--page-size",
      String(PAGE_SIZE),
      "--drill-report",
      drillReport,
    ]);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    if (ui) expect(await ui.stop()).toBe(0);
    admin?.close();
  });

  async function open(url: string, shot?: string): Promise<Page> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    // any script error or CSP violation on a page fails the test below
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    await page.goto(url, { waitUntil: "load" });
    if (shot) await page.screenshot({ path: path.join(SCREENSHOTS, `${shot}.png`), fullPage: true });
    return page;
  }

  async function follow(page: Page, selector: string, shot?: string): Promise<void> {
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
    if (shot) await page.screenshot({ path: path.join(SCREENSHOTS, `${shot}.png`), fullPage: true });
  }

  it("shows the fleet, the cluster's timeline, and browses a snapshot down to an object's YAML and restore command", async () => {
    const page = await open(ui.url, "fleet");
    const row = await texts(page, "table.fleet tbody tr td");
    expect(row[0]).toBe(clusterUid);
    expect(row[1]).toMatch(/^https:\/\//);
    expect(row[2]).toBe("3");
    expect(row[3]).toContain(snapshots[2]);
    expect(row[4]).toMatch(/^recorded to/);
    expect(row[5]).toMatch(/^PASS \d+s ago, RTO [\d.]+s$/);

    await follow(page, `a[href="/clusters/${clusterUid}"]`, "cluster");
    expect(await page.$$("svg.timeline rect.window")).not.toHaveLength(0);
    expect(await page.$$("svg.timeline rect.snap")).toHaveLength(3);
    expect(await texts(page, "table tbody tr td:first-child")).toEqual(
      expect.arrayContaining(["recoverable", ...snapshots]),
    );

    await follow(page, `a[href="/snapshots/${snapshots[0]}"]`, "snapshot");
    expect(await texts(page, "table tbody tr td:first-child")).toEqual([
      `widgets.${group}`,
      `zones.${group}`,
    ]);
    expect(await texts(page, "table tbody tr td.num:nth-child(5)")).toEqual(["7", "1"]);

    await follow(page, `a[href="/snapshots/${snapshots[0]}/${group}/widgets"]`);
    expect(await texts(page, "table tbody tr td:first-child")).toEqual([ns]);
    await follow(page, `a[href="/snapshots/${snapshots[0]}/${group}/widgets/${ns}"]`, "objects");
    // a page of five, a next link, not all seven
    expect(await texts(page, "table.objects tbody tr td:first-child")).toEqual([
      "w-01",
      "w-02",
      "w-03",
      "w-04",
      "w-05",
    ]);
    await follow(page, "a[rel=next]");
    expect(await texts(page, "table.objects tbody tr td:first-child")).toEqual(["w-06", "w-07"]);
    expect(await page.$("a[rel=next]")).toBeNull();

    await follow(page, `a[href="/snapshots/${snapshots[0]}/${group}/widgets/${ns}/w-07"]`, "object");
    const yaml = await page.$eval("pre.yaml", (e) => e.textContent ?? "");
    expect(yaml).toContain("big: 9223372036854775807");
    expect(yaml).toContain('note: "<script>alert(7)</script>"'); // shown as text
    expect(await page.$$("script")).toHaveLength(1); // the page's own copy.js, nothing from the object
    expect(await page.$eval("#restore-command", (e) => e.textContent)).toBe(
      `crd-backup restore ${snapshots[0]} --storage file://${dir} --include-resources widgets.${group} --include-namespaces ${ns} --name w-07 --dry-run`,
    );

    // cluster-scoped: straight to the objects, `_` for the namespace, no namespace flag
    const zone = await open(`${ui.url}snapshots/${snapshots[0]}/${group}/zones/_/eu-1`);
    expect(await zone.$eval("#restore-command", (e) => e.textContent)).toBe(
      `crd-backup restore ${snapshots[0]} --storage file://${dir} --include-resources zones.${group} --name eu-1 --dry-run`,
    );
    expect(pageErrors).toEqual([]);
  });

  it("shows an object across snapshots with what changed, and the state at a point in time", async () => {
    const page = await open(`${ui.url}objects/${group}/widgets/${ns}/w-03`, "versions");
    const rows = await texts(page, "table.versions tbody tr td:first-child a");
    expect(rows).toEqual([...snapshots].reverse());
    const changed = await texts(page, "table.versions tbody tr:first-child ul.paths li");
    expect(changed).toEqual([".spec.size changed"]);
    expect(await texts(page, "table.versions tbody tr:nth-child(2) td:last-child .muted")).toContain(
      "unchanged",
    );
    // the journal's versions come first (ui-history.test.ts looks at them closely)
    expect(await texts(page, "table.journal tr.version .what")).toContain("updated");
    // the time between the lone snapshots and the journal is not recorded: rows of their own
    const gaps = await texts(page, "table.journal tr.gap");
    expect(gaps).not.toHaveLength(0);
    for (const g of gaps) expect(g).toMatch(/^not recorded from \S+Z to \S+Z \(no journal/);
    await follow(page, "a.compare", "side-by-side");
    expect(await texts(page, "table.sbs td.del")).toEqual(["size: 1"]);
    expect(await texts(page, "table.sbs td.add")).toEqual(["size: 2"]);
    expect(await texts(page, "table.sbs thead th")).toEqual([snapshots[1], snapshots[2]]);

    // what changed: between the two newest snapshots (from the cluster page), and from the first
    // snapshot to the state at a time inside the journal's window
    const cluster = await open(`${ui.url}clusters/${clusterUid}`);
    await follow(cluster, "a.since", "changes");
    const changeRows = async (p: Page) =>
      (await texts(p, "table.changes tbody tr")).map((r) => r.replace(/ (before|after|·|side by side)/g, ""));
    expect(await changeRows(cluster)).toEqual([
      `widgets.${group} ${ns} w-03 changed`,
      `widgets.${group} ${ns} w-08 added`,
    ]);
    const since = await open(
      `${ui.url}changes?from=${snapshots[0]}&to=${clusterUid}@${encodeURIComponent(afterPatch)}`,
    );
    expect(await changeRows(since)).toEqual([
      `widgets.${group} ${ns} w-03 changed`,
      `widgets.${group} ${ns} w-08 added`,
    ]);

    const at = await open(`${ui.url}at/${clusterUid}/${encodeURIComponent(afterPatch)}`);
    expect(at.url()).toMatch(/\/at\/[^/]+\/\d{4}-\d\d-\d\dT[^/]+Z$/);
    await at.goto(`${at.url()}/${group}/widgets/${ns}`);
    expect(await texts(at, "table.objects tbody tr td:first-child")).toEqual([
      "w-01",
      "w-02",
      "w-03",
      "w-04",
      "w-05",
    ]);
    await at.goto(`${at.url().replace(/\/widgets\/.*/, "")}/widgets/${ns}/w-08`);
    await at.screenshot({ path: path.join(SCREENSHOTS, "point-in-time.png"), fullPage: true });
    expect(await at.$eval("pre.yaml", (e) => e.textContent)).toContain("size: 8");
    expect(await at.$eval("#restore-command", (e) => e.textContent)).toMatch(
      new RegExp(
        `^crd-backup restore --at \\S+Z --cluster ${clusterUid} --storage file://${dir} --include-resources widgets\\.${group.replaceAll(".", "\\.")} --include-namespaces ${ns} --name w-08 --dry-run$`,
      ),
    );
    expect(pageErrors).toEqual([]);
  });

  it("answers an unknown snapshot with an error page saying what the CLI says", async () => {
    const missing = "20200101T000000Z-00000000";
    const page = await open(`${ui.url}snapshots/${missing}`, "error");
    const cli = await runCli(["inspect", missing, "--storage", dir]);
    expect(cli.code).toBe(1);
    expect(await page.$eval("p.error", (e) => e.textContent)).toBe(cli.stderr.trim());
    const res = await fetch(`${ui.url}snapshots/${missing}`);
    expect(res.status).toBe(404);
    pageErrors.length = 0; // the browser logs the 404 it was meant to get
  });

  it("serves /api/snapshots as list -o json prints it, and /api/history and /api/changes", async () => {
    const api = (await (await fetch(`${ui.url}api/snapshots`)).json()) as unknown;
    const cli = await runCli(["list", "--storage", dir, "-o", "json"]);
    expect(api).toEqual(JSON.parse(cli.stdout));
    // compared with the CLI's -o json byte for byte in ui-history.test.ts
    expect((await fetch(`${ui.url}api/history?resource=widgets&namespace=${ns}&name=w-03`)).status).toBe(200);
    expect((await fetch(`${ui.url}api/changes?since=1h`)).status).toBe(200);
    expect((await fetch(ui.url, { method: "POST" })).status).toBe(405);
  });

  it("on a non-loopback address, refuses requests without the token and accepts it as query, cookie or bearer", async () => {
    const guarded = await startUi(["--storage", dir, "--listen", "0.0.0.0:0"]);
    try {
      const url = new URL(guarded.url);
      const token = url.searchParams.get("token")!;
      expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
      const base = `http://127.0.0.1:${url.port}`;
      const refused = await fetch(`${base}/`);
      expect(refused.status).toBe(401);
      expect(await refused.text()).toContain("needs its token");
      expect((await fetch(`${base}/api/snapshots`)).status).toBe(401);
      expect((await fetch(`${base}/?token=wrong`)).status).toBe(401);
      const first = await fetch(`${base}/?token=${token}`, { redirect: "manual" });
      expect(first.status).toBe(303);
      expect(first.headers.get("location")).toBe("/");
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      expect((await fetch(`${base}/`, { headers: { cookie } })).status).toBe(200);
      expect(
        (await fetch(`${base}/api/snapshots`, { headers: { authorization: `Bearer ${token}` } })).status,
      ).toBe(200);
      // and in the browser: the printed address works, then the cookie alone
      const page = await browser.newPage();
      await page.goto(`${base}/?token=${token}`);
      expect(page.url()).toBe(`${base}/`);
      await page.goto(`${base}/clusters/${clusterUid}`);
      expect(await page.$eval("h1", (e) => e.textContent)).toBe(`Cluster ${clusterUid}`);
    } finally {
      expect(await guarded.stop()).toBe(0);
    }
  });

  it("opens an encrypted snapshot in S3 (MinIO) only with --identity, and names the identity in the restore command", async () => {
    const s3 = freshS3();
    const location = s3.location;
    const key = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-ui-key-")), "dr.txt");
    const keygen = await runCli(["keygen", "-o", key]);
    const recipient = keygen.stdout.trim();
    const snap = await runCli([
      "snapshot",
      "--storage",
      location,
      "--include-groups",
      group,
      "--encrypt-to",
      recipient,
      "-o",
      "json",
    ]);
    expect(snap.code, snap.stderr).toBe(0);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    const stored = await keysOf(s3);
    const objectUrl = (base: string) => `${base}snapshots/${id}/${group}/widgets/${ns}/w-02`;

    const sealed = await startUi(["--storage", location, "--listen", "127.0.0.1:0"]);
    try {
      const fleet = await open(sealed.url);
      const cells = await texts(fleet, "table.fleet tbody tr td");
      expect(cells[1]).toBe("(encrypted)");
      expect(cells[5]).toBe("none stored");
      const page = await open(objectUrl(sealed.url), "encrypted-without-identity");
      const cli = await runCli(["inspect", id, "--objects", "--storage", location]);
      expect(cli.code).toBe(1);
      expect(await page.$eval("p.error", (e) => e.textContent)).toBe(cli.stderr.trim());
      expect((await fetch(objectUrl(sealed.url))).status).toBe(403);
    } finally {
      expect(await sealed.stop()).toBe(0);
    }

    const opened = await startUi(["--storage", location, "--identity", key, "--listen", "127.0.0.1:0"]);
    try {
      const page = await open(objectUrl(opened.url), "encrypted-object");
      expect(await page.$eval("pre.yaml", (e) => e.textContent)).toContain("big: 9223372036854775807");
      expect(await page.$eval("#restore-command", (e) => e.textContent)).toBe(
        `crd-backup restore ${id} --storage ${location} --identity ${key} --include-resources widgets.${group} --include-namespaces ${ns} --name w-02 --dry-run`,
      );
    } finally {
      expect(await opened.stop()).toBe(0);
    }
    expect(await keysOf(s3)).toEqual(stored);
    expect(pageErrors.filter((e) => !e.includes("status of 403"))).toEqual([]);
  });

  it("wrote nothing to the location", () => {
    expect(filesOf(dir)).toEqual(before);
  });
});
