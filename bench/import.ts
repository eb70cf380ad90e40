/**
 * Velero import benchmark (issue 25): a real Velero (test/env/build-velero.sh) backs up N custom
 * resources of about 2 KiB from a real test cluster to MinIO; then, in alternation each round,
 * `crd-backup snapshot` of the same objects and `crd-backup import velero` of that backup, both
 * the built CLI with default flags, both writing to the same MinIO.
 * Targets: import wall time <= 1.5x the snapshot's; import peak RSS <= 250 MB (the tarball is
 * streamed, never unpacked to memory).
 *
 *   node bench/import.ts [--objects 30000] [--crds 15] [--rounds 3] [--keep-tarball FILE]
 */
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { KubeClient } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { S3Backend } from "../src/storage/s3.ts";
import { exportLines, startEnvironment, stopEnvironment } from "../test/env/environment.ts";
import { startVelero } from "../test/support/velero.ts";
import { BENCH_GROUP as GROUP, seedBench } from "./seed.ts";
import { timeCli, type Timed } from "./support.ts";

const { values } = parseArgs({
  options: {
    objects: { type: "string", default: "30000" },
    crds: { type: "string", default: "15" },
    rounds: { type: "string", default: "3" },
    // keep a copy of Velero's tarball, to profile `import velero --from-file` without servers
    "keep-tarball": { type: "string" },
  },
});
const CRDS = Number(values.crds);
const PER_CRD = Math.ceil(Number(values.objects) / CRDS);
const ROUNDS = Number(values.rounds);
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

const env = await startEnvironment();
let stopVelero: (() => Promise<void>) | undefined;
try {
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfig }), { maxSockets: 32 });
  log(`seeding ${CRDS} CRDs x ${PER_CRD} objects`);
  const plurals = await seedBench(client, CRDS, PER_CRD, log);
  const seeded = CRDS * PER_CRD;

  const velero = await startVelero(client, {
    kubeconfig: env.kubeconfig,
    s3: env.s3,
    namespace: "velero-bench",
    prefix: "velero",
  });
  stopVelero = velero.stop;
  const backupStart = performance.now();
  // as `velero backup create --include-resources <crs> --include-cluster-resources=true` (Velero
  // adds the CRDs of the custom resources it backs up)
  await velero.backup(
    "bench",
    {
      includedNamespaces: ["bench-a", "bench-b", "bench-c", "bench-d"],
      includedResources: plurals.map((p) => `${p}.${GROUP}`),
      includeClusterResources: true,
    },
    3_600_000,
  );
  const backupSeconds = (performance.now() - backupStart) / 1000;
  log(`Velero backed up ${seeded} objects in ${backupSeconds.toFixed(0)} s`);
  await velero.stop(); // its CPU must not count against either side
  stopVelero = undefined;

  const cliEnv = {
    ...process.env,
    ...Object.fromEntries(
      exportLines(env)
        .split("\n")
        .map((l) => /^export (\w+)='(.*)'$/.exec(l)!.slice(1, 3) as [string, string]),
    ),
  };
  const quiet = ["-o", "json", "--log-level", "warn"];
  const snapshot = () =>
    timeCli(
      ["snapshot", "--storage", `s3://${env.s3.bucket}/bench-snapshot`, "--include-groups", GROUP, ...quiet],
      cliEnv,
    );
  // a fresh location each time: a second import of the same backup into one is a no-op
  const importInto = (where: string) =>
    timeCli(
      [
        "import",
        "velero",
        "--from",
        `s3://${env.s3.bucket}/velero`,
        "--backup",
        "bench",
        "--storage",
        `s3://${env.s3.bucket}/${where}`,
        ...quiet,
      ],
      cliEnv,
    );
  const objectsOf = (t: Timed, read: (doc: unknown) => number, what: string) => {
    const n = read(JSON.parse(t.stdout));
    if (n !== seeded) throw new Error(`${what} wrote ${n} objects, expected ${seeded}`);
  };
  await snapshot(); // warm the watch cache, MinIO and the CLI's module compile cache
  await importInto("bench-import-warm");

  const rounds: { snapshot: Timed; imported: Timed }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const s = await snapshot();
    objectsOf(s, (d) => (d as { counts: { objects: number } }).counts.objects, "snapshot");
    const i = await importInto(`bench-import-${round}`);
    objectsOf(i, (d) => (d as { counts: { objects: number } }[])[0]!.counts.objects, "import");
    rounds.push({ snapshot: s, imported: i });
    log(
      `round ${round + 1}: snapshot ${s.seconds.toFixed(2)} s (RSS ${s.peakRssMiB.toFixed(0)} MiB), import ${i.seconds.toFixed(2)} s (RSS ${i.peakRssMiB.toFixed(0)} MiB, CPU ${i.cpuSeconds.toFixed(1)} s), ratio ${(i.seconds / s.seconds).toFixed(2)}`,
    );
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const veleroLocation = new S3Backend({
    bucket: env.s3.bucket,
    prefix: "velero",
    endpoint: env.s3.endpoint,
    region: env.s3.region,
    partSize: 5 * 1024 * 1024,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
  });
  const size = (await veleroLocation.stat("backups/bench/bench.tar.gz"))?.size ?? NaN;
  if (values["keep-tarball"])
    await pipeline(
      await veleroLocation.read("backups/bench/bench.tar.gz"),
      createWriteStream(values["keep-tarball"]),
    );
  const ratio = median(rounds.map((r) => r.imported.seconds / r.snapshot.seconds));
  const rss = Math.max(...rounds.map((r) => r.imported.peakRssMiB));
  console.log(
    `objects: ${seeded} (${CRDS} CRDs x ${PER_CRD}, about 2 KiB each), Velero tarball ${(size / 1048576).toFixed(1)} MiB, Velero's own backup ${backupSeconds.toFixed(0)} s, ${ROUNDS} rounds, default flags`,
  );
  console.log(
    `crd-backup snapshot (median):       ${median(rounds.map((r) => r.snapshot.seconds)).toFixed(2)} s, peak RSS ${Math.max(...rounds.map((r) => r.snapshot.peakRssMiB)).toFixed(0)} MiB`,
  );
  console.log(
    `crd-backup import velero (median):  ${median(rounds.map((r) => r.imported.seconds)).toFixed(2)} s, peak RSS ${rss.toFixed(0)} MiB, client CPU ${median(rounds.map((r) => r.imported.cpuSeconds)).toFixed(1)} s`,
  );
  console.log(
    `ratio import/snapshot: ${ratio.toFixed(2)} (target <= 1.5) ${ratio <= 1.5 ? "PASS" : "FAIL"}; per round ${rounds.map((r) => (r.imported.seconds / r.snapshot.seconds).toFixed(2)).join(", ")}`,
  );
  console.log(
    `import peak RSS: ${rss.toFixed(0)} MiB (target <= 250 MB) ${rss * 1.048576 <= 250 ? "PASS" : "FAIL"}`,
  );
  client.close();
} finally {
  await stopVelero?.();
  await stopEnvironment(env);
}
