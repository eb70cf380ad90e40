import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
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
