import { execFile } from "node:child_process";
import https from "node:https";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cliNodeEnv, cliNodeFlags } from "../cli/node-flags.ts";
import { mapConcurrent } from "../src/concurrency.ts";
import type { KubeClient } from "../src/kube/client.ts";

export interface Timed {
  seconds: number;
  peakRssMiB: number;
  /** CPU time of the whole process, user + system, in seconds. */
  cpuSeconds: number;
  stdout: string;
}

/** The built CLI, as `npx crd-backup` runs it (the bench:* npm scripts build it first). */
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** Runs the real CLI under GNU time, for wall time and peak RSS of the whole process. */
export function timeCli(args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm run bench:* does)`);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    execFile(
      "/usr/bin/time",
      ["-f", "crd-backup-peak-rss-kib=%M cpu=%U+%S", process.execPath, ...cliNodeFlags(), CLI, ...args],
      { env: { ...cliNodeEnv(), ...env }, maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const seconds = (performance.now() - start) / 1000;
        const rss = /crd-backup-peak-rss-kib=(\d+) cpu=([\d.]+)\+([\d.]+)/.exec(stderr);
        if (err || !rss)
          return reject(
            new Error(`crd-backup ${args[0]} failed: ${stderr.trim().split("\n").slice(-3).join(" | ")}`),
          );
        resolve({
          seconds,
          peakRssMiB: Number(rss[1]) / 1024,
          cpuSeconds: Number(rss[2]) + Number(rss[3]),
          stdout,
        });
      },
    );
  });
}

/**
 * The baseline: the same paginated LIST calls crd-backup makes (same page size, same
 * concurrency, same TLS identity), with response bodies read and thrown away.
 */
export async function rawListAll(
  client: KubeClient,
  paths: string[],
  pageSize: number,
  concurrency: number,
  tls: https.AgentOptions,
): Promise<{ seconds: number; pages: number; cpuSeconds: number }> {
  const agent = new https.Agent({ ...tls, keepAlive: true, maxSockets: concurrency });
  let pages = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  await mapConcurrent(paths, concurrency, async (path) => {
    let token: string | undefined;
    do {
      const url = client.url(path, { limit: pageSize, continue: token });
      const text = await new Promise<string>((resolve, reject) => {
        https
          .get(url, { agent }, (res) => {
            // only the list's metadata (first or last, by encoder) is kept, for the continue token
            let head = "";
            let tail = "";
            res.on("data", (c: Buffer) => {
              const s = c.toString("latin1");
              if (head.length < 4096) head += s.slice(0, 4096 - head.length);
              tail = (tail + s).slice(-4096);
            });
            res.on("end", () => resolve(head + tail));
            res.on("error", reject);
          })
          .on("error", reject);
      });
      pages++;
      const m = /"continue":"([^"]*)"/.exec(text);
      token = m && m[1] ? m[1] : undefined;
    } while (token);
  });
  agent.destroy();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, pages, cpuSeconds: (used.user + used.system) / 1e6 };
}
