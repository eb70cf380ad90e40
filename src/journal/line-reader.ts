/**
 * Lines and exact byte counts from a segment's decompressed stream (segment-reader.ts), with the
 * position reached, so a reader can note where each record starts and later seek back to it.
 */
import type { Readable } from "node:stream";
import { MAX_BODY_BYTES, MAX_SEGMENT_BYTES, invalid } from "./segment-format.ts";

/** A record line (everything but the body) is small; a longer one is not a segment. */
const MAX_LINE_BYTES = 64 * 1024;

/** Lines and exact byte counts from a stream, holding at most one body plus one chunk. */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private total = 0;
  private readonly it: AsyncIterator<Buffer>;

  private readonly key: string;
  private readonly share: boolean;

  constructor(stream: Readable, key: string, share = false) {
    this.key = key;
    this.share = share;
    this.it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.it.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.total += next.value.length;
    if (this.total > MAX_SEGMENT_BYTES + MAX_BODY_BYTES)
      throw invalid(this.key, "larger than a segment may be");
    this.buf = this.buf.length ? Buffer.concat([this.buf, next.value]) : next.value;
    return true;
  }

  /** Bytes of the stream consumed so far: where the next line or body starts. */
  get position(): number {
    return this.total - this.buf.length;
  }

  /** Discards the next n bytes (a reader seeking to a record it indexed). */
  async skip(n: number): Promise<void> {
    while (this.buf.length < n) {
      n -= this.buf.length;
      this.buf = Buffer.alloc(0);
      if (!(await this.more())) throw invalid(this.key, "truncated: a record is past the end");
    }
    this.buf = this.buf.subarray(n);
  }

  /** The next line if the buffer holds all of it (null: call line()). */
  bufferedLine(): Buffer | null {
    const nl = this.buf.indexOf(0x0a);
    if (nl < 0) return null;
    const line = this.buf.subarray(0, nl);
    this.buf = this.buf.subarray(nl + 1);
    return line;
  }

  /** The next n bytes if the buffer holds them (null: call bytes()): copied, unless bodies are shared. */
  bufferedBytes(n: number): Buffer | null {
    if (this.buf.length < n) return null;
    let out = this.buf.subarray(0, n);
    if (!this.share) {
      out = Buffer.allocUnsafe(n);
      this.buf.copy(out, 0, 0, n);
    }
    this.buf = this.buf.subarray(n);
    return out;
  }

  async line(): Promise<Buffer | undefined> {
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, start);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl);
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      start = this.buf.length;
      if (this.buf.length > MAX_LINE_BYTES) throw invalid(this.key, "a record line is too long");
      if (!(await this.more())) {
        if (this.buf.length) throw invalid(this.key, "truncated: the last line has no newline");
        return undefined;
      }
    }
  }

  async bytes(n: number): Promise<Buffer> {
    // gather a large body's chunks and join them once, not once per chunk
    const parts: Buffer[] = [];
    let have = 0;
    while (have + this.buf.length < n) {
      parts.push(this.buf);
      have += this.buf.length;
      this.buf = Buffer.alloc(0);
      if (!(await this.more())) throw invalid(this.key, "truncated inside a body");
    }
    parts.push(this.buf.subarray(0, n - have));
    this.buf = this.buf.subarray(n - have);
    return Buffer.concat(parts, n);
  }
}
