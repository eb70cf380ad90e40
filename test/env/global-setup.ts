import type { TestProject } from "vitest/node";
import { startEnvironment, stopEnvironment, type EnvironmentInfo } from "./environment.ts";

declare module "vitest" {
  export interface ProvidedContext {
    env: EnvironmentInfo;
  }
}

/** One real kube-apiserver + etcd + MinIO for the whole integration run; stopped even when tests fail. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await startEnvironment();
  project.provide("env", env);
  return () => stopEnvironment(env);
}
