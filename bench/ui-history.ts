/**
 * The web view's journal history at scale, without a cluster: bench/history.ts writes its location
 * (a base snapshot of --keys objects and one chain of --events changes over 24 h into a local
 * directory, and times the CLI's `history` and `changes` on it when dist/ is built); then
 * `crd-backup ui` runs from the sources in a child process (the CLI's Node flags), and this script
 * times over HTTP, each --samples times (the first is cold): /api/history of the object
 * bench/history.ts asks about, its /objects/ page (journal window and stored snapshots), and
 * /api/changes over one hour in the middle of the chain; with the server's peak RSS (VmHWM).
 *
 *   npm run build && node bench/ui-history.ts [--events 1000000] [--keys 100000] [--samples 3] [--dir DIR]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { CLI_MAIN, cliNodeEnv, cliNodeFlags } from "../cli/node-flags.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    keys: { type: "string", default: "100000" },
    samples: { type: "string", default: "3" },
    dir: { type: "string" },
  },
});
const keys = Number(values.keys);
const GROUP = "bench.example.com";
// as bench/history.ts names its objects and its window
const nameOf = (k: number) => `item-${String(k).padStart(7, "0")}`;
const nsOf = (k: number) => `ns-${k % 10}`;
const FINISHED = new Date("2026-12-03T05:00:01.000Z");
const target = Math.floor(keys / 2);

const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), "crd-backup-bench-ui-history-"));
const gen = spawnSync(
  process.execPath,
  [
    path.join(import.meta.dirname, "history.ts"),
    ...["--events", values.events, "--keys", values.keys, "--dir", dir, "--keep"],
  ],
  { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
);
// the CLI's figures for the same location, when dist/ is built (bench/history.ts needs it)
console.log(gen.stdout.trim());
if (!gen.stdout.startsWith("generated")) throw new Error(`generating the location failed: ${gen.stderr}`);

const child = spawn(
  process.execPath,
  [...cliNodeFlags(), CLI_MAIN, "ui", "--storage", dir, "--listen", "127.0.0.1:0"],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...cliNodeEnv() } },
);
const base = await new Promise<string>((resolve, reject) => {
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    const m = / at (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  child.on("close", (code) => reject(new Error(`ui exited (${code})`)));
});

const peakRssMiB = () =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;

/** Each sample's seconds (the first cold), the response's size and the peak RSS after them. */
async function timed(p: string): Promise<{ seconds: number[]; bytes: number; peakRssMiB: number }> {
  const seconds: number[] = [];
  let bytes = 0;
  for (let i = 0; i < Number(values.samples); i++) {
    const t0 = performance.now();
    const res = await fetch(base + p);
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${p}: ${res.status} ${body.slice(0, 300)}`);
    seconds.push(+((performance.now() - t0) / 1000).toFixed(2));
    bytes = Buffer.byteLength(body);
  }
  return { seconds, bytes, peakRssMiB: Math.round(peakRssMiB()) };
}

try {
  const ns = nsOf(target);
  const name = nameOf(target);
  const since = new Date(FINISHED.getTime() + 12 * 3_600_000);
  const until = new Date(since.getTime() + 3_600_000);
  const history = await timed(`api/history?resource=items.${GROUP}&namespace=${ns}&name=${name}`);
  const page = await timed(`objects/${GROUP}/items/${ns}/${name}`);
  const changes = await timed(`api/changes?since=${since.toISOString()}&until=${until.toISOString()}`);
  console.log(
    JSON.stringify(
      {
        events: Number(values.events),
        objects: keys,
        load: os.loadavg().map((l) => +l.toFixed(1)),
        apiHistory: history,
        objectPage: page,
        apiChangesOneHour: changes,
      },
      null,
      2,
    ),
  );
} finally {
  child.kill("SIGINT");
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
