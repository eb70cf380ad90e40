/**
 * V8's compile cache for the CLI's files, in a folder only this account can change. Node's default,
 * a folder in the shared temp directory, would run code cached there by any other local account.
 * NODE_COMPILE_CACHE (a folder the user chose) and NODE_DISABLE_COMPILE_CACHE are honoured; where
 * no private folder can be made (a read-only home in a container) the CLI runs without the cache.
 */
import { lstatSync, mkdirSync } from "node:fs";
import module from "node:module";
import os from "node:os";
import path from "node:path";

type Enable = (dir?: string) => { directory?: string };

/** The folder the cache is kept in, or undefined when it is off. */
export function enablePrivateCompileCache(
  env: NodeJS.ProcessEnv = process.env,
  enable: Enable | undefined = module.enableCompileCache,
): string | undefined {
  if (!enable || env["NODE_DISABLE_COMPILE_CACHE"]) return undefined;
  if (env["NODE_COMPILE_CACHE"]) return enable().directory;
  const base = env["XDG_CACHE_HOME"] || path.join(os.homedir(), ".cache");
  const dir = path.join(base, "crd-backup", "node-compile-cache");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!isPrivate(dir) || !isPrivate(path.dirname(dir))) return undefined;
  } catch {
    return undefined;
  }
  return enable(dir).directory;
}

/** Ours, and nobody else may add to or replace what is in it. */
function isPrivate(dir: string): boolean {
  const st = lstatSync(dir);
  return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}
