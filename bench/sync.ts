/**
 * Sync benchmark (issue 24): `restore --sync` of a snapshot of N objects (25 CRDs) into the same
 * cluster after 1% of the objects were made to differ: a third changed (spec), a third deleted
 * (missing), and as many extra objects created. Baseline, measured in the same run on the same
 * cluster from the same divergence: what the sync cannot avoid, issued directly: one paginated
 * read of the live objects (bodies read and thrown away, one resource after another as the
 * restore plan reads them) and the writes (a server-side apply per changed object, a create per
 * missing one, a delete per extra one) at restore's default concurrency.
 * Target: sync wall time <= 1.5x the baseline with default flags.
 *
 *   node bench/sync.ts [--crds 25] [--objects-per-crd 2000] [--rounds 2] [--cpu-prof DIR]
 *
 * --cpu-prof DIR: every sync writes a V8 CPU profile (node --cpu-prof) into DIR, to see where its
 * CPU goes (it is most of its wall time).
 */
import { createReadStream, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { readArchive } from "../src/archive/reader.ts";
import { mapConcurrent } from "../src/concurrency.ts";
import { KubeClient } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { collectionPath } from "../src/kube/discovery.ts";
import { RESTORE_CONCURRENCY } from "../src/restore/options.ts";
import { archiveKey } from "../src/storage/layout.ts";
import { startEnvironment, stopEnvironment } from "../test/env/environment.ts";
import { BENCH_GROUP, seedBench } from "./seed.ts";
import { rawListAll, timeCli } from "./support.ts";

const { values } = parseArgs({
  options: {
    crds: { type: "string", default: "25" },
    "objects-per-crd": { type: "string", default: "2000" },
    rounds: { type: "string", default: "2" },
    "cpu-prof": { type: "string" },
  },
});
const CRDS = Number(values.crds);
const PER_CRD = Number(values["objects-per-crd"]);
const PAGE = 500; // the page size of the restore plan's live reads (objects/live.ts)
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

interface Stored {
  path: string;
  name: string;
  body: string;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-bench-sync-"));
const env = await startEnvironment();
try {
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfig }), {
    maxSockets: RESTORE_CONCURRENCY,
  });
  log(`seeding ${CRDS} CRDs x ${PER_CRD} objects`);
  const plurals = await seedBench(client, CRDS, PER_CRD, log);
  const cliEnv = { ...process.env, KUBECONFIG: env.kubeconfig };
  await timeCli(
    ["snapshot", "--storage", dir, "--include-groups", BENCH_GROUP, "--log-level", "warn"],
    cliEnv,
  );
  const id = readdirSync(path.join(dir, "snapshots"))[0]!;

  // the stored objects, and the 1% that will differ: every 100th, in thirds
  const stored: Stored[] = [];
  for await (const e of readArchive(createReadStream(path.join(dir, archiveKey(id))))) {
    if (e.kind !== "object") continue;
    const r = e.ref;
    stored.push({
      path: collectionPath(r.group, r.version, r.plural, r.namespace),
      name: r.name,
      body: e.body.toString(),
    });
  }
  const differing = stored.filter((_, i) => i % 100 === 0);
  const changed = differing.filter((_, i) => i % 3 === 0);
  const missing = differing.filter((_, i) => i % 3 === 1);
  const extraCount = differing.length - changed.length - missing.length;
  const extraOf = (k: number) => ({
    path: collectionPath(BENCH_GROUP, "v1", plurals[k % plurals.length]!, "bench-a"),
    name: `extra-${k}`,
  });
  log(
    `snapshot ${id}: ${stored.length} objects; ${changed.length} changed, ${missing.length} missing, ${extraCount} extra`,
  );

  const diverge = () =>
    mapConcurrent(
      [
        ...changed.map(
          (o) => () =>
            client.request({
              method: "PATCH",
              path: `${o.path}/${o.name}`,
              body: JSON.stringify({ spec: { index: -1, tags: ["changed"] } }),
              contentType: "application/merge-patch+json",
            }),
        ),
        ...missing.map((o) => () => client.request({ method: "DELETE", path: `${o.path}/${o.name}` })),
        ...Array.from({ length: extraCount }, (_, k) => () => {
          const x = extraOf(k);
          return client.request({
            method: "POST",
            path: x.path,
            body: JSON.stringify({
              apiVersion: `${BENCH_GROUP}/v1`,
              kind: `Thing${x.path.split("/").at(-1)!.slice(6)}`,
              metadata: { name: x.name, labels: { app: "bench" } },
              spec: { payload: "y".repeat(1700) },
            }),
          });
        }),
      ],
      16,
      (write) => write(),
    );

  const tls = {
    ca: readFileSync(env.caCert),
    cert: readFileSync(env.kubeconfig.replace(/kubeconfig$/, "pki/admin.crt")),
    key: readFileSync(env.kubeconfig.replace(/kubeconfig$/, "pki/admin.key")),
  };
  const paths = plurals.map((p) => collectionPath(BENCH_GROUP, "v1", p));

  /** The writes a sync needs, issued directly after one paginated read; seconds. */
  const baseline = async () => {
    const start = performance.now();
    await rawListAll(client, paths, PAGE, 1, tls);
    await mapConcurrent(
      [
        ...changed.map(
          (o) => () =>
            client.request({
              method: "PATCH",
              path: `${o.path}/${o.name}`,
              query: { fieldManager: "crd-backup", force: "true" },
              body: o.body,
              contentType: "application/apply-patch+yaml",
            }),
        ),
        ...missing.map((o) => () => client.request({ method: "POST", path: o.path, body: o.body })),
        ...Array.from({ length: extraCount }, (_, k) => () => {
          const x = extraOf(k);
          return client.request({ method: "DELETE", path: `${x.path}/${x.name}` });
        }),
      ],
      RESTORE_CONCURRENCY,
      (write) => write(),
    );
    return (performance.now() - start) / 1000;
  };

  /** crd-backup restore --sync with default flags; seconds, peak RSS, and the report's counts checked. */
  const sync = async () => {
    const prof = values["cpu-prof"];
    const res = await timeCli(
      ["restore", id, "--sync", "--storage", dir, "--log-level", "warn", "-o", "json"],
      prof ? { ...cliEnv, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(prof)}` } : cliEnv,
    );
    const { counts } = JSON.parse(res.stdout) as { counts: Record<string, number> };
    const want = { created: missing.length, updated: changed.length, deleted: extraCount };
    for (const [k, v] of Object.entries(want))
      if (counts[k] !== v) throw new Error(`sync ${k} ${counts[k]}, not ${v}: ${JSON.stringify(counts)}`);
    return res;
  };

  // warm the CLI's first start and the API server's watch cache, then check the cluster is in sync
  await rawListAll(client, paths, PAGE, 1, tls);
  await diverge();
  await sync();
  const runs: { baseline: number; sync: number; rss: number; cpu: number }[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    // alternating which goes first: this machine is shared
    let b = 0;
    let s = { seconds: 0, peakRssMiB: 0, cpuSeconds: 0 };
    for (const which of round % 2 === 0 ? ["baseline", "sync"] : ["sync", "baseline"]) {
      await diverge();
      if (which === "baseline") b = await baseline();
      else s = await sync();
    }
    runs.push({ baseline: b, sync: s.seconds, rss: s.peakRssMiB, cpu: s.cpuSeconds });
    log(
      `round ${round + 1}: baseline ${b.toFixed(2)} s, sync ${s.seconds.toFixed(2)} s (CPU ${s.cpuSeconds.toFixed(2)} s), RSS ${s.peakRssMiB.toFixed(0)} MiB`,
    );
  }
  client.close();
  https.globalAgent.destroy();
  const best = (xs: number[]) => Math.min(...xs);
  const base = best(runs.map((r) => r.baseline));
  const synced = best(runs.map((r) => r.sync));
  console.log(
    `objects: ${stored.length} across ${CRDS} CRDs, ${differing.length} differing (${changed.length} changed, ${missing.length} missing, ${extraCount} extra), default flags`,
  );
  console.log(`baseline (one paginated read, then the writes directly): ${base.toFixed(2)} s`);
  console.log(
    `crd-backup restore --sync (fetch, verify, plan, write, delete, report): ${synced.toFixed(2)} s, CPU ${best(runs.map((r) => r.cpu)).toFixed(2)} s`,
  );
  console.log(
    `ratio sync/baseline: ${(synced / base).toFixed(2)} (target <= 1.50) ${synced / base <= 1.5 ? "PASS" : "FAIL"}`,
  );
  console.log(`peak RSS: ${Math.max(...runs.map((r) => r.rss)).toFixed(0)} MiB`);
} finally {
  await stopEnvironment(env);
}
