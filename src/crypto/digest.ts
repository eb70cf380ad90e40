import { createHash } from "node:crypto";
import { Transform } from "node:stream";

/** A pass-through that hashes and counts what flows through it: the digest of the stored bytes. */
export class DigestTap extends Transform {
  #hash = createHash("sha256");
  size = 0;
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (e?: Error | null, c?: Buffer) => void,
  ): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  /** Call once the stream has ended. */
  sha256(): string {
    return this.#hash.digest("hex");
  }
}
