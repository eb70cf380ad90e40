/**
 * The web view's journal history (issue 23, item 4) in Debian's headless Chromium, against a
 * journal `crd-backup record` wrote from the real kube-apiserver: an object's page opened by its
 * deep link lists its versions with what happened and the changed paths, a diff shows the old and
 * new value side by side, every version's restore command is the short form that a real
 * `restore --dry-run` accepts; /api/history and /api/changes are byte for byte what `history -o
 * json` and `changes -o json` print for the same query, bad queries answer the CLI's one line;
 * an encrypted journal opens only with --identity. Screenshots go to .testenv/screenshots/.
 */
import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey } from "../../src/crypto/keys.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import { createRaw, makeCrd, objPath, patch, spoolDir, startRecorder } from "../support/recorder.ts";
import { launchBrowser, SCREENSHOTS, startUi, texts, type UiProcess } from "../support/ui.ts";

const BIG = "9007199254740993"; // 2^53 + 1: a float64 would round it

interface Row {
  when: string;
  what: string;
  paths: string[];
  diff: string | undefined;
  command: string | undefined;
  text: string;
}

/** The journal table's version rows, as a reader sees them. */
const journalRows = (page: Page): Promise<Row[]> =>
  page.$$eval("table.journal tr.version", (rows) =>
    rows.map((r) => ({
      when: r.querySelector("td.when")?.textContent?.trim() ?? "",
      what: r.querySelector(".what")?.textContent?.trim() ?? "",
      paths: [...r.querySelectorAll("ul.paths li")].map((li) => li.textContent?.trim() ?? ""),
      diff: r.querySelector("a.diff")?.getAttribute("href") ?? undefined,
      command: r.querySelector(".cmd code")?.textContent ?? undefined,
      text: (r.textContent ?? "").replace(/\s+/g, " ").trim(),
    })),
  );

function filesOf(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[])
    .map((f) => path.join(root, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => `${path.relative(root, f)} ${statSync(f).size} ${statSync(f).mtimeMs}`)
    .sort();
}

/** Records `act` on the real API server into `dir`; resolves with the times before and after. */
async function record(
  dir: string,
  group: string,
  act: () => Promise<void>,
  env: Record<string, string> = {},
): Promise<{ start: string; done: string }> {
  const start = new Date().toISOString();
  const args = ["--storage", dir, "--include-groups", group, "--spool-dir", spoolDir()];
  const rec = startRecorder([...args, "--flush-interval", "1s"], env);
  try {
    await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
    await act();
    await sleep(2_500);
    rec.child.kill("SIGTERM");
    expect((await rec.exited).code, rec.log()).toBe(0);
  } finally {
    rec.child.kill("SIGKILL");
  }
  return { start, done: new Date().toISOString() };
}

describe("the web view's journal history in a real browser", () => {
  let admin: KubeClient;
  let browser: Browser;
  let ui: UiProcess;
  const group = `${uniqueName("uih")}.crd-backup.io`;
  const ns = uniqueName("uih");
  const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-uih-"));
  let clusterUid = "";
  let window = { start: "", done: "" };
  let before: string[] = [];
  const pageErrors: string[] = [];
  const w = (name?: string) => objPath(group, "widgets", ns, name);

  beforeAll(async () => {
    admin = await adminClient();
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const body = (name: string, size: number) =>
      `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"${name}"},"spec":{"size":${size},"big":${BIG}}}`;
    await createRaw(admin, w(), body("w-1", 1)); // in the recorder's base
    window = await record(dir, group, async () => {
      await patch(admin, w("w-1"), { spec: { size: 2 } });
      await createRaw(admin, w(), body("w-2", 8));
      await sleep(1_100); // its own second: the delete's time differs from the create's
      await admin.request({ method: "DELETE", path: w("w-2") });
    });
    const listed = await runCli(["list", "--storage", dir, "-o", "json"]);
    clusterUid = (JSON.parse(listed.stdout) as { cluster: { uid: string } }[])[0]!.cluster.uid;
    before = filesOf(dir);
    ui = await startUi(["--storage", dir, "--listen", "127.0.0.1:0", "--page-size", "5"]);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    if (ui) expect(await ui.stop()).toBe(0);
    admin?.close();
  });

  async function open(url: string, shot?: string): Promise<Page> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    await page.goto(url, { waitUntil: "load" });
    if (shot) await page.screenshot({ path: path.join(SCREENSHOTS, `${shot}.png`), fullPage: true });
    return page;
  }

  it("opens an object's history by its deep link: versions, changed paths, a diff with the old and new value, restore commands", async () => {
    const page = await open(`${ui.url}objects/${group}/widgets/${ns}/w-1`, "journal-history");
    const rows = await journalRows(page);
    expect(rows.map((r) => [r.what, r.paths])).toEqual([
      ["in the base", []],
      ["updated", [".spec.size"]],
    ]);
    const updated = rows[1]!;
    expect(updated.text).toContain("journal");
    expect(updated.command).toBe(
      `crd-backup restore widgets.${group}/w-1 -n ${ns} --at ${updated.when} --cluster ${clusterUid} --storage file://${dir} --dry-run`,
    );
    // the command does what it says: a real dry run of the one object as it was then
    const dry = await runCli(updated.command!.split(" ").slice(1));
    expect(dry.code, dry.stderr).toBe(0);

    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("a.diff")]);
    await page.screenshot({ path: path.join(SCREENSHOTS, "journal-diff.png"), fullPage: true });
    expect(await texts(page, "table.sbs thead th")).toEqual([
      "the version before",
      `updated at ${updated.when}`,
    ]);
    expect(await texts(page, "table.sbs td.del")).toEqual(["size: 1"]);
    expect(await texts(page, "table.sbs td.add")).toEqual(["size: 2"]);
    expect(await page.$eval("main", (e) => e.textContent)).toContain(`big: ${BIG}`);

    // created and deleted in the journal: the delete restores the version before it
    const gone = await open(`${ui.url}objects/${group}/widgets/${ns}/w-2`);
    const [created, deleted] = await journalRows(gone);
    expect([created!.what, deleted!.what]).toEqual(["created", "deleted"]);
    expect(deleted!.text).toContain("as it was before the delete");
    expect(deleted!.command).toBe(created!.command);
    expect(created!.command).toContain(`--at ${created!.when} `);
    expect(pageErrors).toEqual([]);
  });

  it("pages to earlier windows, and says inside the page when a window holds no version", async () => {
    const page = await open(`${ui.url}objects/${group}/widgets/${ns}/w-1`);
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("a.earlier")]);
    const cli = await runCli([
      "history",
      `widgets/w-1`,
      "-n",
      ns,
      "--storage",
      dir,
      ...["--since", new URL(page.url()).searchParams.get("since")!],
      ...["--until", new URL(page.url()).searchParams.get("until")!],
    ]);
    expect(cli.code).toBe(2); // the day before the first snapshot: outside everything recorded
    expect(await page.$eval("p.error", (e) => e.textContent)).toBe(cli.stderr.trim());
    expect(await page.$("a.later")).not.toBeNull();
  });

  it("serves /api/history and /api/changes byte for byte as history and changes -o json print them", async () => {
    const q = (s: string) => encodeURIComponent(s);
    const span = ["--since", window.start, "--until", window.done];
    const cliHistory = await runCli([
      "history",
      "widgets/w-1",
      "-n",
      ns,
      "--storage",
      dir,
      ...span,
      "-o",
      "json",
    ]);
    expect(cliHistory.code, cliHistory.stderr).toBe(0);
    const history = await fetch(
      `${ui.url}api/history?resource=widgets&namespace=${ns}&name=w-1&since=${q(window.start)}&until=${q(window.done)}`,
    );
    expect(history.status).toBe(200);
    expect(history.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const text = await history.text();
    expect(text).toBe(cliHistory.stdout);
    expect(text).toContain(`"big": ${BIG}`);

    for (const filter of [[], ["--include-namespaces", ns]]) {
      const cli = await runCli(["changes", "--storage", dir, ...span, ...filter, "-o", "json"]);
      expect(cli.code, cli.stderr).toBe(0);
      const extra = filter.length ? `&include-namespaces=${ns}` : "";
      const api = await fetch(
        `${ui.url}api/changes?since=${q(window.start)}&until=${q(window.done)}${extra}`,
      );
      expect(api.status).toBe(200);
      expect(await api.text()).toBe(cli.stdout);
    }
  });

  it("answers a bad query with the status and the one line the CLI prints", async () => {
    const until = window.done;
    const cases: [string, string[], number][] = [
      ["resource=nosuch&name=x", ["history", "nosuch/x"], 400],
      ["resource=widgets&name=w-1", ["history", "widgets/w-1"], 400],
      [`resource=widgets&namespace=${ns}&name=nope`, ["history", "widgets/nope", "-n", ns], 404],
      [
        `resource=widgets&namespace=${ns}&name=w-1&since=yesterday`,
        ["history", "widgets/w-1", "-n", ns, "--since", "yesterday"],
        400,
      ],
      [
        `resource=widgets&namespace=${ns}&name=w-1&since=2001-01-01T00:00:00Z`,
        [
          "history",
          "widgets/w-1",
          "-n",
          ns,
          "--since",
          "2001-01-01T00:00:00Z",
          "--until",
          "2001-01-02T00:00:00Z",
        ],
        400,
      ],
    ];
    for (const [query, args, status] of cases) {
      const fixed = args.includes("--until")
        ? query.replace(/$/, "&until=2001-01-02T00:00:00Z")
        : `${query}&until=${encodeURIComponent(until)}`;
      const cli = await runCli([
        ...args,
        "--storage",
        dir,
        ...(args.includes("--until") ? [] : ["--until", until]),
      ]);
      expect(cli.code, query).toBe(status === 400 ? 2 : 1);
      const res = await fetch(`${ui.url}api/history?${fixed}`);
      expect(res.status, query).toBe(status);
      expect(await res.json(), query).toEqual({ error: cli.stderr.trim() });
    }
    expect((await fetch(`${ui.url}api/changes?until=1h`)).status).toBe(400);
    expect((await fetch(`${ui.url}api/history?resource=widgets&nmae=w-1`)).status).toBe(400);
  });

  it("shows the journal's changes between two times, grouped, with counts and paths", async () => {
    const page = await open(
      `${ui.url}changes?since=${encodeURIComponent(window.start)}&until=${encodeURIComponent(window.done)}`,
      "journal-changes",
    );
    expect(await texts(page, ".totals")).toEqual(["1 updated, 1 created and deleted"]);
    expect(await texts(page, "tr.group th:first-child")).toEqual([`widgets.${group} in ${ns}`]);
    const objects = await texts(page, "tr.object");
    expect(objects[0]).toBe("w-1 updated 1 .spec.size");
    expect(objects[1]).toMatch(/^w-2 created and deleted 2/);
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("tr.object a")]);
    expect(new URL(page.url()).searchParams.get("since")).toBe(new Date(window.start).toISOString());
    expect((await journalRows(page)).map((r) => r.what)).toEqual(["in the base", "updated"]);

    // from the cluster's timeline: the last hour of its recorded window
    const cluster = await open(`${ui.url}clusters/${clusterUid}`);
    const links = await cluster.$$("a.journal-changes");
    expect(links).not.toHaveLength(0);
    await Promise.all([cluster.waitForNavigation({ waitUntil: "load" }), links.at(-1)!.click()]);
    expect(await texts(cluster, ".totals")).toEqual(["1 updated, 1 created and deleted"]);
    expect(pageErrors).toEqual([]);
  });

  it("reads an encrypted journal only with --identity", async () => {
    const encDir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-uih-enc-"));
    const keyFile = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-uih-key-")), "key.txt");
    const key = await generateKey();
    writeFileSync(keyFile, key.file, { mode: 0o600 });
    const body = `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"e-1"},"spec":{"size":1}}`;
    const { done } = await record(
      encDir,
      group,
      async () => {
        await createRaw(admin, w(), body);
        await patch(admin, w("e-1"), { spec: { size: 2 } });
      },
      { CRD_BACKUP_ENCRYPT_TO: key.recipient },
    );
    const query = `api/history?resource=widgets&namespace=${ns}&name=e-1&until=${encodeURIComponent(done)}`;
    const args = ["history", "widgets/e-1", "-n", ns, "--storage", encDir, "--until", done, "-o", "json"];

    const sealed = await startUi(["--storage", encDir, "--listen", "127.0.0.1:0"]);
    try {
      const cli = await runCli(args);
      expect(cli.code).toBe(1);
      const res = await fetch(`${sealed.url}${query}`);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: cli.stderr.trim() });
      const page = await open(`${sealed.url}objects/${group}/widgets/${ns}/e-1`);
      expect(await page.$eval("p.error", (e) => e.textContent)).toMatch(/encrypted/);
    } finally {
      expect(await sealed.stop()).toBe(0);
    }
    const opened = await startUi(["--storage", encDir, "--identity", keyFile, "--listen", "127.0.0.1:0"]);
    try {
      const cli = await runCli([...args, "--identity", keyFile]);
      expect(cli.code, cli.stderr).toBe(0);
      const res = await fetch(`${opened.url}${query}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(cli.stdout);
      const page = await open(`${opened.url}objects/${group}/widgets/${ns}/e-1`, "journal-encrypted");
      const rows = await journalRows(page);
      expect(rows.map((r) => r.what)).toEqual(["created", "updated"]);
      expect(rows[1]!.command).toContain(`--identity ${keyFile} --dry-run`);
    } finally {
      expect(await opened.stop()).toBe(0);
    }
  });

  it("wrote nothing to the location", () => {
    expect(filesOf(dir)).toEqual(before);
  });
});
