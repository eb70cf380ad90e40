/**
 * A restore reports on every object, and at 100k+ objects the entries alone would cost more memory
 * than the rest of the restore. They go to a private temp file as JSON lines instead, in batches:
 * appends stay synchronous (every write path adds to the report), and one write per batch of about
 * a thousand entries costs nothing next to the API calls that produced them.
 */
import { randomUUID } from "node:crypto";
import { closeSync, createReadStream, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const FLUSH_CHARS = 128 * 1024;

export class ReportSpool<T> {
  readonly path = join(tmpdir(), `crd-backup-report-${randomUUID()}.jsonl`);
  #fd: number | undefined;
  #pending: string[] = [];
  #pendingChars = 0;
  #removed = false;

  append(value: T): void {
    if (this.#removed) throw new Error("the restore report was already disposed");
    const line = JSON.stringify(value) + "\n";
    this.#pending.push(line);
    this.#pendingChars += line.length;
    if (this.#pendingChars >= FLUSH_CHARS) this.#flush();
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    // "ax" with 0600: never into a file someone else made, and names of objects are private
    this.#fd ??= openSync(this.path, "ax", 0o600);
    writeSync(this.#fd, this.#pending.join(""));
    this.#pending = [];
    this.#pendingChars = 0;
  }

  /** Every value appended so far, in order (callable more than once). */
  async *read(): AsyncGenerator<T> {
    if (this.#removed) throw new Error("the restore report was already disposed");
    this.#flush();
    if (this.#fd === undefined) return;
    const lines = createInterface({ input: createReadStream(this.path), crlfDelay: Infinity });
    for await (const line of lines) if (line) yield JSON.parse(line) as T;
  }

  remove(): void {
    this.#removed = true;
    this.#pending = [];
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.path, { force: true });
  }
}
