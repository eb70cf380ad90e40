/**
 * npm run env:up   starts an empty environment that stays up, prints `export` lines for eval,
 *                  and writes them to .testenv/env.sh (a running one is stopped first).
 * npm run env:down stops it and removes its data.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { exportLines, startEnvironment, stopEnvironment, type EnvironmentInfo } from "./environment.ts";

const dir = fileURLToPath(new URL("../../.testenv/", import.meta.url));
const stateFile = path.join(dir, "state.json");
const envFile = path.join(dir, "env.sh");

async function down(): Promise<void> {
  if (!existsSync(stateFile)) return;
  const env = JSON.parse(readFileSync(stateFile, "utf8")) as EnvironmentInfo;
  await stopEnvironment(env);
  rmSync(stateFile, { force: true });
  rmSync(envFile, { force: true });
  process.stderr.write("test/env: stopped\n");
}

async function up(): Promise<void> {
  await down();
  mkdirSync(dir, { recursive: true });
  const env = await startEnvironment({ persistent: true });
  writeFileSync(stateFile, JSON.stringify(env, null, 2), { mode: 0o600 });
  const lines = exportLines(env) + "\n";
  writeFileSync(envFile, lines, { mode: 0o600 });
  process.stdout.write(lines);
  process.stderr.write(`test/env: up; the same lines are in ${envFile}; stop with: npm run env:down\n`);
}

const command = process.argv[2];
try {
  if (command === "up") await up();
  else if (command === "down") await down();
  else throw new Error("usage: node test/env/cli.ts up|down");
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
}
