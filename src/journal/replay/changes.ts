/**
 * What a journal changed up to T, with memory proportional to the number of distinct changed
 * keys, never to their bodies: each put's body is appended to a spill file on disk, and memory
 * keeps per changed key only its last operation, where its body sits in the file, its record
 * number and uid, in typed arrays indexed by a slot per key (about 250 bytes a key, the key and
 * uid strings included: bench/replay.ts). Resyncs are kept per resource (a handful).
 */
import { readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { archiveInvalid, type ObjectRef } from "../../archive/format.ts";
import { describe, type JournalRecord, type RecordKey } from "../segment-format.ts";

/** The last operation on one key: a put (body at off/size in the spill file) or a delete. */
export interface Change {
  key: string;
  put: boolean;
  /** Record number in the chain: orders the change against resyncs. */
  n: number;
  off: number;
  size: number;
  uid: string;
  /** Objects: the version the record was written at. */
  version?: string;
}

/** The record numbers of a resource's last completed resync (begin, end). */
interface Resync {
  begin: number;
  end: number;
}

export type Identity =
  { kind: "crd"; name: string } | { kind: "namespace"; name: string } | { kind: "object"; ref: ObjectRef };

const SPILL_BUFFER = 1024 * 1024;

const SLASHED = (r: RecordKey): boolean =>
  [r.group, r.plural, r.namespace, r.name].some((f) => f !== undefined && f.includes("/"));

/** Changed keys are independent of the version an object was recorded at. */
export function keyOf(r: RecordKey | Identity): string {
  if (r.kind === "crd") return `c/${r.name}`;
  if (r.kind === "namespace") return `n/${r.name}`;
  const o = "ref" in r ? r.ref : (r as RecordKey);
  // join makes one flat string; a template literal is a tree of V8 cons strings (seven nodes, 32
  // bytes each, holding the parts alive), which a set of 40,000 keys kept as 20 MB (bench/history.ts)
  return ["o", o.group, o.plural, o.namespace ?? "", o.name].join("/");
}

/** The resource a key belongs to, as resync records name it. */
export function resourceOf(key: string): string {
  if (key.startsWith("c/")) return "crds";
  if (key.startsWith("n/")) return "namespaces";
  const [, group, plural] = key.split("/");
  return `${plural}.${group}`;
}

/** The object a changed key names (version from its last record). */
export function objectOf(key: string, version: string): ObjectRef {
  const [, group, plural, namespace, name] = key.split("/") as [string, string, string, string, string];
  const ref: ObjectRef = { group, version, plural, name };
  if (namespace !== "") ref.namespace = namespace;
  return ref;
}

function resyncResource(r: { kind: string; group?: string; plural?: string }): string {
  return r.kind === "crd" ? "crds" : r.kind === "namespace" ? "namespaces" : `${r.plural}.${r.group}`;
}

/** Per-key fields, one slot per distinct key, grown by doubling. */
class Slots {
  readonly index = new Map<string, number>();
  keys: string[] = [];
  uids: string[] = [];
  versions: (string | undefined)[] = [];
  n = new Float64Array(1024);
  off = new Float64Array(1024);
  size = new Uint32Array(1024);
  put = new Uint8Array(1024);
  /** One string per distinct version, not one per key. */
  readonly #versions = new Map<string, string>();

  slot(key: string): number {
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.keys.length;
      if (i === this.n.length) this.#grow();
      this.index.set(key, i);
      this.keys.push(key);
      this.uids.push("");
      this.versions.push(undefined);
    }
    return i;
  }

  version(v: string | undefined): string | undefined {
    if (v === undefined) return undefined;
    const known = this.#versions.get(v);
    if (known !== undefined) return known;
    this.#versions.set(v, v);
    return v;
  }

  get(i: number): Change {
    const c: Change = {
      key: this.keys[i]!,
      put: this.put[i] === 1,
      n: this.n[i]!,
      off: this.off[i]!,
      size: this.size[i]!,
      uid: this.uids[i]!,
    };
    const version = this.versions[i];
    if (version !== undefined) c.version = version;
    return c;
  }

  #grow(): void {
    const grow = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(a.length * 2);
      b.set(a);
      return b;
    };
    this.n = grow(this.n, (k) => new Float64Array(k));
    this.off = grow(this.off, (k) => new Float64Array(k));
    this.size = grow(this.size, (k) => new Uint32Array(k));
    this.put = grow(this.put, (k) => new Uint8Array(k));
  }
}

export class ChangeSet implements AsyncDisposable {
  readonly #slots = new Slots();
  readonly #resyncs = new Map<string, Resync>();
  readonly #begun = new Map<string, number>();
  readonly #file: FileHandle;
  readonly #buf = Buffer.allocUnsafe(SPILL_BUFFER);
  #used = 0;
  /** Bytes in the spill file, buffered ones included. */
  #size = 0;
  #n = 0;
  /** Records applied, and the time of the last one. */
  applied = 0;
  lastRecord: string | undefined;

  private constructor(file: FileHandle) {
    this.#file = file;
  }

  static async create(spillFile: string): Promise<ChangeSet> {
    return new ChangeSet(await open(spillFile, "w+"));
  }

  get spillBytes(): number {
    return this.#size;
  }

  /** `key`: keyOf(r), when the caller has it (one string shared by the caller's maps and this one). */
  async apply(r: JournalRecord, key?: string): Promise<void> {
    const n = ++this.#n;
    this.applied++;
    this.lastRecord = r.t;
    switch (r.op) {
      case "put":
      case "delete": {
        // keys are joined with "/", which no Kubernetes name holds: one that does would alias another
        if (SLASHED(r)) throw archiveInvalid(`${describe(r)}: a name holds "/"`);
        const s = this.#slots;
        const i = s.slot(key ?? keyOf(r));
        s.n[i] = n;
        s.uids[i] = r.uid;
        if (r.op === "put") {
          s.off[i] = await this.#append(r.body);
          s.size[i] = r.body.length;
          s.put[i] = 1;
          s.versions[i] = s.version(r.kind === "object" ? r.version : undefined);
        } else s.put[i] = 0;
        return;
      }
      case "resync": {
        const resource = resyncResource(r);
        if (r.phase === "begin") this.#begun.set(resource, n);
        else {
          const begin = this.#begun.get(resource);
          // an end without its begin (the begin fell before the base) proves nothing: ignored
          if (begin !== undefined) this.#resyncs.set(resource, { begin, end: n });
          this.#begun.delete(resource);
        }
        return;
      }
      case "gap":
        return; // gaps shape the windows (chains.ts); a replay only reaches exact points
    }
  }

  /** Whether a key exists at T: its last change, unless a later completed resync did not see it. */
  alive(key: string): boolean {
    const c = this.get(key);
    const resync = this.#resyncs.get(resourceOf(key));
    if (!c) return resync === undefined; // a base object, never changed: gone if a re-list missed it
    if (resync && resync.end > c.n) return c.put && c.n > resync.begin;
    return c.put;
  }

  /** The distinct keys changed. */
  get size(): number {
    return this.#slots.keys.length;
  }

  has(key: string): boolean {
    return this.#slots.index.has(key);
  }

  get(key: string): Change | undefined {
    const i = this.#slots.index.get(key);
    return i === undefined ? undefined : this.#slots.get(i);
  }

  /** Every changed key's last change, in the order the keys were first changed. */
  *all(): Generator<Change> {
    for (let i = 0; i < this.#slots.keys.length; i++) yield this.#slots.get(i);
  }

  /** `scratch`: read into it (reused by a caller that drops each body at once) when it is large enough. */
  async body(c: Change, scratch?: Buffer): Promise<Buffer> {
    const out =
      scratch && scratch.length >= c.size ? scratch.subarray(0, c.size) : Buffer.allocUnsafe(c.size);
    const flushed = this.#size - this.#used;
    if (c.off >= flushed) {
      // still in the write buffer (#append puts a body wholly there or wholly in the file): a flush
      // per body read was a small write (and a thread-pool round trip) per record
      this.#buf.copy(out, 0, c.off - flushed, c.off - flushed + c.size);
      return out;
    }
    // a synchronous pread: the bodies were just written and sit in the page cache, and an async
    // read per body (a thread-pool round trip each) took most of the time of writing the state
    let at = 0;
    while (at < c.size) {
      const n = readSync(this.#file.fd, out, at, c.size - at, c.off + at);
      if (n === 0) throw new Error("journal spill file is shorter than written");
      at += n;
    }
    return out;
  }

  async #append(body: Buffer): Promise<number> {
    const off = this.#size;
    if (this.#used + body.length > this.#buf.length) await this.#flush();
    if (body.length > this.#buf.length) await this.#write(body);
    else {
      body.copy(this.#buf, this.#used);
      this.#used += body.length;
    }
    this.#size += body.length;
    return off;
  }

  async #flush(): Promise<void> {
    const used = this.#used;
    this.#used = 0;
    await this.#write(this.#buf.subarray(0, used));
  }

  async #write(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) at += (await this.#file.write(data, at, data.length - at)).bytesWritten;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#file.close();
  }
}
