import { describe, expect, it } from "vitest";
import { packageDirOf } from "../../../cli/bundle.ts";

describe("packageDirOf: the package a bundled module comes from", () => {
  it("is the innermost node_modules/<name>, scoped or not", () => {
    expect(packageDirOf("/r/node_modules/commander/lib/command.js")).toBe("/r/node_modules/commander");
    expect(packageDirOf("/r/node_modules/@aws-sdk/client-s3/dist-es/index.js")).toBe(
      "/r/node_modules/@aws-sdk/client-s3",
    );
    // a nested copy belongs to itself, not to the package it is nested in
    expect(packageDirOf("/r/node_modules/a/node_modules/@s/b/x.js")).toBe(
      "/r/node_modules/a/node_modules/@s/b",
    );
  });

  it("is undefined for the project's own modules", () => {
    expect(packageDirOf("/r/src/index.ts")).toBeUndefined();
    expect(packageDirOf("/r/node_modules")).toBeUndefined();
  });
});
