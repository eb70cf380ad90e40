/**
 * The tar side of reading an archive: header blocks, pax records and bodies, straight from
 * gunzip's output chunks. A general tar parser (tar-stream) costs several stream objects,
 * callbacks and promises per entry, which for ~2 KiB objects was more than everything else a
 * restore's read does; this reads the subset docs/format.md allows (pax 'x' headers before
 * regular files) and reports anything else as what it is, for reader.ts to refuse.
 *
 * Pax headers are untrusted input that costs memory before any entry is checked, so they are held
 * to what the format allows: one 'x' header per entry (never one after another, never a global
 * 'g' header, never one left without its entry), at most MAX_PAX_SIZE bytes, and of its records
 * only the keys the format defines are kept (PAX_KEYS). Work and memory per entry are therefore
 * bounded by one small header, however many headers an archive piles up.
 *
 * Every body and header is a view of gunzip's chunks where it fits in one (zlib never reuses an
 * output buffer it has handed out), so reading costs no copy for most entries.
 */
import { PAX_SHA256, PAX_UID, archiveInvalid, quote } from "./format.ts";

const BLOCK = 512;
/**
 * The pax records of our archives are at most a path of MAX_NAME_BYTES (1 KiB), a 64-digit hash
 * and a uid of at most 128 characters, about 1.3 KiB in all; 8 KiB leaves room for another pax
 * writer's records (mtime, atime, …: dropped, see PAX_KEYS) without letting a header grow with an
 * attack. (TarFormatError's "pax-size" is no longer thrown: an oversized header is refused here.)
 */
export const MAX_PAX_SIZE = 8 * 1024;
/** The pax keys docs/format.md defines; records with any other key are dropped unread. */
const PAX_KEYS: ReadonlySet<string> = new Set(["path", PAX_SHA256, PAX_UID]);

/** What is wrong with the tar data itself; reader.ts turns it into a line naming the entry. */
export class TarFormatError extends Error {
  readonly kind: "truncated" | "header" | "pax-size" | "size";
  constructor(kind: TarFormatError["kind"], message: string) {
    super(message);
    this.kind = kind;
  }
}

const TYPES: Record<number, string> = {
  0: "file",
  0x30: "file",
  0x31: "link",
  0x32: "symlink",
  0x33: "character-device",
  0x34: "block-device",
  0x35: "directory",
  0x36: "fifo",
  0x37: "contiguous-file",
  0x67: "pax-global-header",
  0x4c: "gnu-long-path",
  0x4b: "gnu-long-link-path",
};

export interface TarEntry {
  name: string;
  /** "file" for a regular file, else tar-stream's name for the type. */
  type: string;
  size: number;
  /** Seconds since the epoch, from the ustar header (0 when unreadable); crd-backup's readers ignore it. */
  mtime: number;
  pax: Record<string, string>;
}

/** Bytes from an async source of chunks, taken in pieces of known size. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private offset = 0; // into chunks[0]
  available = 0;
  private done = false;
  private readonly source: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Waits until n bytes are available; false if the source ended first. */
  async fill(n: number): Promise<boolean> {
    while (this.available < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.available += next.value.length;
      }
    }
    return this.available >= n;
  }

  /** The next n bytes (available already): a view when they lie in one chunk. */
  take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (this.offset + n <= first.length) {
      const view = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(n - at, chunk.length - this.offset);
      chunk.copy(out, at, this.offset, this.offset + count);
      at += count;
      this.advance(count);
    }
    return out;
  }

  /** At most n bytes of what is available, as a view of one chunk. */
  takeSome(n: number): Buffer {
    const first = this.chunks[0]!;
    return this.take(Math.min(n, first.length - this.offset));
  }

  private advance(n: number): void {
    this.available -= n;
    this.offset += n;
    while (this.chunks.length > 0 && this.offset >= this.chunks[0]!.length) {
      this.offset -= this.chunks[0]!.length;
      this.chunks.shift();
    }
  }

  /** Reads the source to its end (so its errors surface and whatever hashes it sees every byte). */
  async drain(): Promise<void> {
    this.chunks = [];
    this.available = 0;
    this.offset = 0;
    while (!this.done) if ((await this.source.next()).done) this.done = true;
  }
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

function octal(block: Buffer, from: number, length: number): number | undefined {
  let value = 0;
  let digits = 0;
  let i = from;
  const end = from + length;
  while (i < end && block[i] === 0x20) i++;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  return digits > 0 ? value : undefined;
}

function text(block: Buffer, from: number, length: number): string {
  const end = block.indexOf(0, from);
  return block.toString("utf8", from, end === -1 || end > from + length ? from + length : end);
}

function isZeros(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumOk(block: Buffer): boolean {
  const recorded = octal(block, 148, 8);
  if (recorded === undefined) return false;
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += block[i]!;
  return sum === recorded;
}

/** `len key=value\n` records, of the keys in PAX_KEYS (others are dropped); later keys win, as in pax. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.toString("latin1", at, space));
    if (!Number.isInteger(length) || length <= 0 || at + length > data.length)
      throw new TarFormatError("header", "bad pax record");
    const record = data.toString("utf8", space + 1, at + length - 1);
    const eq = record.indexOf("=");
    if (eq === -1) throw new TarFormatError("header", "bad pax record");
    const key = record.slice(0, eq);
    if (PAX_KEYS.has(key)) out[key] = record.slice(eq + 1);
    at += length;
  }
  return out;
}

/**
 * The entries of a tar stream. The consumer reads each entry's body with the function it is given
 * (whole, or in pieces for a large entry) before asking for the next; what it does not read is
 * skipped. After the end-of-archive block the rest of the source is read and ignored.
 */
export async function* readTar(
  source: AsyncIterable<Buffer>,
): AsyncGenerator<{ entry: TarEntry; body: TarBody }, void, undefined> {
  const bytes = new ByteQueue(source);
  let pax: Record<string, string> | undefined;
  let last: string | undefined; // the name of the last entry yielded, for messages
  const refuse = (why: string) =>
    archiveInvalid(
      `archive is not a valid tar stream${last === undefined ? "" : ` after entry ${quote(last)}`}: ${why}`,
      { entry: last },
    );
  for (;;) {
    if (bytes.available < BLOCK && !(await bytes.fill(BLOCK))) {
      // an archive must end with its end-of-archive block; a stream that just stops was cut
      throw new TarFormatError("truncated", "Unexpected end of data");
    }
    const block = bytes.take(BLOCK);
    if (isZeros(block)) {
      if (pax !== undefined) throw refuse("a pax extended header is not followed by an entry");
      break;
    }
    if (!checksumOk(block)) throw new TarFormatError("header", "Invalid tar header");
    const size = octal(block, 124, 12);
    if (size === undefined) throw new TarFormatError("size", "Invalid header");
    const typeflag = block[156]!;
    if (typeflag === 0x67) throw refuse("a pax global header (typeflag 'g') is not allowed");
    if (typeflag === 0x78) {
      // a pax header: its records describe the next entry, which must follow it directly
      if (pax !== undefined)
        throw refuse("a pax extended header follows another one; only one is allowed per entry");
      if (size > MAX_PAX_SIZE)
        throw refuse(`a pax extended header of ${size} bytes is over the limit of ${MAX_PAX_SIZE}`);
      const padded = size + padding(size);
      if (bytes.available < padded && !(await bytes.fill(padded)))
        throw new TarFormatError("truncated", "Unexpected end of data");
      pax = parsePax(bytes.take(padded).subarray(0, size));
      continue;
    }
    let name = text(block, 0, 100);
    if (block.toString("latin1", 257, 262) === "ustar") {
      const prefix = text(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const records = pax ?? {};
    pax = undefined;
    if (records["path"] !== undefined) name = records["path"];
    const mtime = octal(block, 136, 12) ?? 0;
    const entry: TarEntry = { name, type: TYPES[typeflag] ?? "non-standard", size, mtime, pax: records };
    last = name;
    let left = size;
    const body: TarBody = {
      async all(): Promise<Buffer> {
        if (bytes.available < size && !(await bytes.fill(size)))
          throw new TarFormatError("truncated", "Unexpected end of data");
        left = 0;
        return bytes.take(size);
      },
      async *pieces(): AsyncGenerator<Buffer> {
        while (left > 0) {
          if (bytes.available === 0 && !(await bytes.fill(1)))
            throw new TarFormatError("truncated", "Unexpected end of data");
          const piece = bytes.takeSome(left);
          left -= piece.length;
          yield piece;
        }
      },
    };
    yield { entry, body };
    for await (const _ of body.pieces()); // what the consumer did not read
    const pad = padding(size);
    if (pad > 0) {
      if (bytes.available < pad && !(await bytes.fill(pad)))
        throw new TarFormatError("truncated", "Unexpected end of data");
      bytes.take(pad);
    }
  }
  await bytes.drain();
}

export interface TarBody {
  /** The whole body (the consumer has checked that its size is acceptable). */
  all(): Promise<Buffer>;
  /** The body in pieces, for entries too large to hold. */
  pieces(): AsyncGenerator<Buffer>;
}
