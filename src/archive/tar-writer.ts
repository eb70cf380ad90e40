/**
 * The tar side of writing an archive: header blocks, pax records, padding and the end of the
 * stream, written straight into the writer's batch (see TarHeaders). A general tar packer
 * (tar-stream) costs several stream objects, callbacks and promises per entry, more than the rest
 * of a snapshot's work on a ~2 KiB object. tar-reader.ts reads what this writes.
 */
import { PAX_SHA256, PAX_UID } from "./format.ts";

const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);
const TYPE_FILE = 0x30; // '0'
const TYPE_PAX = 0x78; // 'x'
const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;
/** The ustar name field: a longer name goes in a pax path record. */
const NAME_FIELD = 100;

/** The end of the tar stream: two zero blocks. */
export const END_OF_ARCHIVE: Buffer = ZEROS;

/** The zero bytes that pad a body of `size` bytes to a whole block. */
export const paddingAfter = (size: number): Buffer => ZEROS.subarray(0, padding(size));

/**
 * ustar header blocks as tar-stream wrote them (so archives stay byte for byte what they were):
 * every header is named "PaxHeader" (the pax path record is authoritative), mode 0644, uid and
 * gid 0, the snapshot's mtime; only the size, the type flag and the checksum vary.
 */
export class TarHeaders {
  readonly #template = Buffer.alloc(BLOCK);
  /** Checksum of the template, with the checksum field counted as spaces. */
  readonly #sum: number;
  /** What the template's name field adds to #sum ("PaxHeader"), taken off when a name replaces it. */
  readonly #nameSum: number;

  constructor(mtime: Date) {
    const t = this.#template;
    const octal = (value: number, digits: number) => `${value.toString(8).padStart(digits, "0")} `;
    t.write("PaxHeader", 0, "latin1");
    this.#nameSum = t.subarray(0, NAME_FIELD).reduce((a, b) => a + b, 0);
    t.write(octal(0o644, 6), 100, "latin1");
    t.write(octal(0, 6), 108, "latin1");
    t.write(octal(0, 6), 116, "latin1");
    t.write(octal((mtime.getTime() / 1000) | 0, 11), 136, "latin1");
    t.write("ustar\u000000", 257, "latin1");
    t.write(octal(0, 6), 329, "latin1");
    t.write(octal(0, 6), 337, "latin1");
    let sum = 8 * 0x20;
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += t[i]!;
    this.#sum = sum;
  }

  /**
   * The pax header block, the pax records and the ustar header block of an entry whose body is
   * `size` bytes, contiguous at `out[at]`, where headersSize(pax.length) bytes must be free.
   * Returns the offset after them, where the body goes.
   */
  write(out: Buffer, at: number, pax: string, size: number): number {
    this.#block(out, at, TYPE_PAX, pax.length);
    at += BLOCK;
    at += out.write(pax, at, "latin1");
    out.fill(0, at, at + padding(pax.length));
    at += padding(pax.length);
    this.#block(out, at, TYPE_FILE, size);
    return at + BLOCK;
  }

  /**
   * Version 3: the entry's name in the ustar name field where it fits (NAME_FIELD bytes), and a pax
   * header only for `pax` records (a uid, or the path of a longer name). Returns the offset after
   * the headers; ustarSize(pax.length) bytes must be free at `out[at]`.
   */
  writeUstar(out: Buffer, at: number, name: string, pax: string, size: number): number {
    if (pax.length > 0) {
      this.#block(out, at, TYPE_PAX, pax.length);
      at += BLOCK;
      at += out.write(pax, at, "latin1");
      out.fill(0, at, at + padding(pax.length));
      at += padding(pax.length);
    }
    this.#block(out, at, TYPE_FILE, size, name.length <= NAME_FIELD ? name : undefined);
    return at + BLOCK;
  }

  /** One header block at `out[at]`. Sizes stay below 8 GiB (11 octal digits): entries are capped far lower. */
  #block(out: Buffer, at: number, type: number, size: number, name?: string): void {
    this.#template.copy(out, at);
    out[at + 135] = 0x20;
    out[at + 156] = type;
    let sum = this.#sum + type + 0x20;
    if (name !== undefined) {
      // names are ASCII by their grammar, so characters are bytes
      out.fill(0, at, at + NAME_FIELD);
      sum -= this.#nameSum;
      for (let i = 0; i < name.length; i++) sum += out[at + i] = name.charCodeAt(i);
    }
    // octal digits written as bytes: a header per entry makes string formatting show in profiles
    for (let i = 10, v = size; i >= 0; i--, v = Math.floor(v / 8)) {
      const digit = 0x30 + (v % 8);
      out[at + 124 + i] = digit;
      sum += digit;
    }
    for (let i = 5, v = sum; i >= 0; i--, v = Math.floor(v / 8)) out[at + 148 + i] = 0x30 + (v % 8);
    out[at + 154] = 0x20;
  }
}

/**
 * A pax record: its own length in decimal, a space, key=value, a newline. Entry names (by their
 * grammar), uids (by UID_PATTERN) and hashes are ASCII, so characters are bytes.
 */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let digits = String(body.length).length;
  if (body.length + digits >= 10 ** digits) digits++;
  return `${body.length + digits}${body}`;
}

/** An entry's pax records, whose length is known before its hash (always 64 hex digits) is. */
export function paxRecords(entry: string, uid: string | undefined) {
  const path = paxRecord("path", entry);
  const owner = uid === undefined ? "" : paxRecord(PAX_UID, uid);
  return {
    length: path.length + SHA256_RECORD_LENGTH + owner.length,
    withHash: (hash: string) => path + paxRecord(PAX_SHA256, hash) + owner,
  };
}
const SHA256_RECORD_LENGTH = paxRecord(PAX_SHA256, "0".repeat(64)).length;

/**
 * Version 3's pax records: the path only if the name does not fit the ustar name field, the uid
 * if there is one; often none at all.
 */
export function ustarPax(entry: string, uid: string | undefined): string {
  const path = entry.length > NAME_FIELD ? paxRecord("path", entry) : "";
  return uid === undefined ? path : path + paxRecord(PAX_UID, uid);
}

/** Bytes taken by version 3's headers: a pax header only when there are records. */
export const ustarSize = (paxLength: number): number => (paxLength === 0 ? BLOCK : headersSize(paxLength));

/** Bytes taken by the pax header block, the records padded to a block, and the ustar header block. */
export const headersSize = (paxLength: number): number => BLOCK + paxLength + padding(paxLength) + BLOCK;
