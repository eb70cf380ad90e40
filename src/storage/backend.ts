import type { Readable } from "node:stream";

/**
 * The storage contract every backend meets (test/integration/storage.test.ts runs one suite over
 * all of them). Keys are relative, `/`-separated and made only by storage/layout.ts. Errors use
 * the codes NOT_FOUND, ALREADY_EXISTS and STORAGE.
 */
export interface StorageBackend {
  /** Where this backend points, for messages: never contains credentials. */
  readonly location: string;

  /**
   * Streams `body` to `key`. The key becomes visible only when the whole body is stored; a
   * failed or aborted write leaves nothing behind (no partial file, no open multipart upload).
   */
  write(key: string, body: Readable, options?: { signal?: AbortSignal }): Promise<{ size: number }>;

  /** Stores small `data` at `key` only if nothing is there yet (ALREADY_EXISTS otherwise). */
  createExclusive(key: string, data: Buffer, options?: { signal?: AbortSignal }): Promise<void>;

  /** The whole value, streamed (NOT_FOUND if absent). */
  read(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;

  /** Size of `key`, or undefined if absent. */
  stat(key: string): Promise<{ size: number } | undefined>;

  /** Every key under `prefix`, in lexical order. */
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;

  /**
   * Removes `key`, every stored version of it where storage keeps versions; removing an absent
   * key is not an error. A version under Object Lock retention fails with LOCKED.
   */
  remove(key: string): Promise<void>;

  /**
   * Until when storage refuses to delete `key` (S3 Object Lock: the latest retain-until date of
   * any of its versions), or undefined when it would not. Backends without locks leave it out.
   */
  lockedUntil?(key: string): Promise<Date | undefined>;

  /**
   * Removes what interrupted writes under `prefix` left behind (temp files, multipart uploads);
   * returns how many. With `olderThan`, only what was started before then: a write in progress
   * elsewhere (another cluster's snapshot sharing the prefix) must not be cut off.
   */
  cleanupIncomplete(prefix: string, options?: { olderThan?: Date }): Promise<number>;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
