/**
 * `crd-backup ui` as a user starts it (a child process that prints its address), and headless
 * Chromium from Debian's package driven by puppeteer-core, for the web view's tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { CLI_MAIN, cliNodeFlags } from "../../cli/node-flags.ts";
import { envVars } from "./cli.ts";

export const SCREENSHOTS = path.resolve(import.meta.dirname, "../../.testenv/screenshots");
const CHROMIUM = "/usr/bin/chromium";

export interface UiProcess {
  child: ChildProcess;
  url: string;
  stop: () => Promise<number | null>;
}

/** `crd-backup ui` in a child process, as a user starts it; resolves once it printed its address. */
export async function startUi(args: string[]): Promise<UiProcess> {
  const child = spawn(process.execPath, [...cliNodeFlags(), CLI_MAIN, "ui", ...args], {
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", ...envVars() },
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = / at (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void closed.then((code) => reject(new Error(`ui exited (${code}) before serving: ${out}${err}`)));
  });
  return {
    child,
    url,
    stop: async () => {
      child.kill("SIGINT");
      return closed;
    },
  };
}

/** Debian's Chromium, headless; screenshots go to SCREENSHOTS. */
export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // the tests run as root, where Chromium's sandbox cannot start
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** The text of every match, white space collapsed as a reader sees it. */
export const texts = (page: Page, selector: string) =>
  page.$$eval(selector, (els) => els.map((e) => (e.textContent ?? "").replace(/\s+/g, " ").trim()));
