/**
 * An encrypted recorder: bases and journal segments alike go to storage as age files, so the
 * recorder (holding only public keys) leaves nothing readable behind, and `--at` reads the journal
 * with an identity and refuses in one line without one.
 */
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { generateKey } from "../../src/crypto/keys.ts";
import { parseSegmentKey } from "../../src/journal/segment-key.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import { makeCrd, objPath, spoolDir, startRecorder } from "../support/recorder.ts";
import { writeFileSync } from "node:fs";

function storedFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

describe("crd-backup record --encrypt-to", () => {
  it("stores bases and segments as age files, and --at reads them only with an identity", async () => {
    const admin = await adminClient();
    const group = `${uniqueName("recenc")}.fixtures.crd-backup.io`;
    const ns = uniqueName("recenc");
    const secret = `secret-value-${uniqueName("s")}`;
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const key = await generateKey();
    const keyFile = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-key-")), "key.txt");
    writeFileSync(keyFile, key.file, { mode: 0o600 });
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-recenc-"));

    const rec = startRecorder(
      ["--storage", dir, "--include-groups", group, "--spool-dir", spoolDir(), "--flush-interval", "1s"],
      { CRD_BACKUP_ENCRYPT_TO: key.recipient },
    );
    const names: string[] = [];
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      for (let i = 0; i < 5; i++) {
        const name = `enc-${i}`;
        await admin.request({
          method: "POST",
          path: objPath(group, "widgets", ns),
          body: JSON.stringify({
            apiVersion: `${group}/v1`,
            kind: "Widget",
            metadata: { name, labels: { team: "payments" } },
            spec: { note: secret },
          }),
        });
        names.push(name);
      }
      await sleep(2_500);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }

    // every segment is encrypted, and no stored byte names the objects or their contents
    const files = storedFiles(dir);
    const segments = files.map((f) => parseSegmentKey(path.relative(dir, f))).filter((s) => s !== undefined);
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments) expect(s.encrypted).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f).toString("latin1");
      for (const needle of [secret, ns, "enc-0", "payments", group])
        expect(bytes.includes(needle), `${needle} in ${f}`).toBe(false);
    }

    // without an identity: one line, exit non-zero, nothing written
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-recenc-out-")), "now");
    const refused = await runCli(["export", "--at", "now", "--storage", dir, "--to", out]);
    expect(refused.code).not.toBe(0);
    expect(
      refused.stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("crd-backup:")),
    ).toHaveLength(1);

    // with the identity: the state at the end holds every object, contents intact
    const exported = await runCli([
      "export",
      "--at",
      "now",
      "--storage",
      dir,
      "--identity",
      keyFile,
      "--to",
      out,
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const written = storedFiles(out).filter((f) => f.includes(`${path.sep}${ns}${path.sep}`));
    expect(written.map((f) => path.basename(f).replace(/\.(json|yaml)$/, "")).sort()).toEqual(names.sort());
    expect(readFileSync(written[0]!, "utf8")).toContain(secret);
  });
});
