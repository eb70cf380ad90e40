import { spawn } from "node:child_process";
import { testEnv } from "./cluster.ts";

import { CLI_MAIN as MAIN, cliNodeFlags } from "../../cli/node-flags.ts";

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment variables a user of the test environment would have after `eval "$(npm run -s env:up)"`. */
export function envVars(): Record<string, string> {
  const env = testEnv();
  return {
    KUBECONFIG: env.kubeconfig,
    AWS_ENDPOINT_URL: env.s3.endpoint,
    AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
    AWS_REGION: env.s3.region,
  };
}

/**
 * Runs the real CLI in a child process, as a user would, against the test environment: from the
 * sources, or `main` (a bundle of them, see cli/bundle.ts).
 */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string; main?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cliNodeFlags(), options.main ?? MAIN, ...args], {
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: process.env["HOME"] ?? "/tmp",
        ...envVars(),
        ...options.env,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}
