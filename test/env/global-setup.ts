import type { TestProject } from "vitest/node";
import { startEnvironment, stopEnvironment, type TestEnvironment } from "./environment.ts";
import { ensureTools } from "./servers.ts";

declare module "vitest" {
  export interface ProvidedContext {
    env: TestEnvironment;
  }
}

/**
 * One real kube-apiserver + etcd + MinIO for the whole integration run, and the tools tests run
 * (npm test has built them up front); stopped even when tests fail.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tools = await ensureTools();
  const env = await startEnvironment();
  project.provide("env", { ...env, tools });
  return () => stopEnvironment(env);
}
