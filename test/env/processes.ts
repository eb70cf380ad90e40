import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Started {
  name: string;
  pid: number;
  logFile: string;
}

/**
 * Starts a server in its own process group with its output in a log file, so it outlives
 * nothing by accident: stopProcesses() ends the whole group, and a watchdog (watchdog.sh)
 * ends it if the process that started it dies first.
 */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): Started {
  const fd = openSync(opts.logFile, "a");
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`test/env: cannot start ${name} (${command})`);
  return { name, pid: child.pid, logFile: opts.logFile };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM every group, then SIGKILL whatever is still alive after the grace period. */
export async function stopProcesses(pids: number[], graceMs = 10_000): Promise<void> {
  for (const pid of pids) signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of pids) if (isAlive(pid)) signalGroup(pid, "SIGKILL");
  while (pids.some(isAlive)) await sleep(50);
}

/** How to start one server again: what startProcess was given. */
export interface LaunchSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: Record<string, string>;
  /** A URL that answers 200 once the server is ready (https ones with the environment's admin certificate). */
  readyUrl: string;
}

/** A server of one environment: how to launch it, and its process now (pid 0: stopped). */
export interface ServerRecord extends LaunchSpec {
  pid: number;
}

const REGISTRY = "servers.json";

/**
 * The servers of the environment in `rootDir`, by name. The registry lives in a file, not in
 * memory, because a server restarted by one test worker must be found (and stopped) by the
 * process that owns the environment, and by the watchdog.
 */
export function readServers(rootDir: string): Record<string, ServerRecord> {
  try {
    return JSON.parse(readFileSync(path.join(rootDir, REGISTRY), "utf8")) as Record<string, ServerRecord>;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return {};
    throw e;
  }
}

/** Saves the registry and rewrites rootDir/pids, the list the watchdog (watchdog.sh) ends. */
export function writeServers(rootDir: string, servers: Record<string, ServerRecord>): void {
  writeFileSync(path.join(rootDir, REGISTRY), JSON.stringify(servers, null, 2), { mode: 0o600 });
  const pids = Object.values(servers)
    .map((s) => s.pid)
    .filter((pid) => pid > 0);
  writeFileSync(path.join(rootDir, "pids"), pids.join("\n") + "\n");
}

/** Starts the server `spec` describes and records it in the registry under `key`. */
export function launchServer(rootDir: string, key: string, spec: LaunchSpec): ServerRecord {
  const started = startProcess(spec.name, spec.command, spec.args, { logFile: spec.logFile, env: spec.env });
  const record = { ...spec, pid: started.pid };
  writeServers(rootDir, { ...readServers(rootDir), [key]: record });
  return record;
}
